"""Compares an Autobahn run (kosoku's index.json) with the committed
expected results: every expected case must be there, and none may do worse
than expected (OK beats NON-STRICT; INFORMATIONAL is as good as it gets for
its case). Prints a summary; exits 1 on any regression."""

import json
import sys

RANK = {"OK": 0, "NON-STRICT": 1, "INFORMATIONAL": 1}


def rank(behavior):
    return RANK.get(behavior, 9)


def main(index_path, expected_path):
    index = json.load(open(index_path))
    (results,) = index.values()
    expected = json.load(open(expected_path))
    regressions = []
    for case, want in expected.items():
        got = results.get(case)
        if got is None:
            regressions.append(f"{case}: not run")
            continue
        for field in ("behavior", "behaviorClose"):
            if rank(got[field]) > rank(want[field]):
                regressions.append(f"{case}: {field} {got[field]}, expected {want[field]}")
    counts = {}
    for got in results.values():
        counts[got["behavior"]] = counts.get(got["behavior"], 0) + 1
    summary = ", ".join(f"{n} {b}" for b, n in sorted(counts.items()))
    print(f"autobahn: {len(results)} cases: {summary}")
    if regressions:
        print("regressions against tests/autobahn/expected.json:")
        for line in regressions:
            print("  " + line)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
