#!/usr/bin/env python3
"""Compiles the FreeDict bilingual dictionaries into the lexicons search ships.

Usage: scripts/lexicon.py DICTD_DIR OUT_DIR

DICTD_DIR holds the dictd files of the Debian packages dict-freedict-eng-nld,
-nld-eng, -eng-fra, -fra-eng, -eng-deu, -deu-eng, -eng-spa, -spa-eng, -eng-ita
and -ita-eng (`freedict-XXX-YYY.index` and `.dict.dz`). `scripts/build-lexicon`
fetches them and runs this script.

For each language L of nl, fr, de, es, it it writes `L-en.tsv.gz` and
`en-L.tsv.gz`: one line per head word or two-word phrase, lowercased, then a
tab and at most six translations separated by `|`, best first. Search folds
and stems both sides when it loads them.

A translation ranks by where it stands in the forward dictionary's entry and
where the head stands in the reverse dictionary's entry for it; a pair found
both ways ranks above one found one way, and a sense marked with a specialist
domain (medicine, botany, law, ...) ranks below an everyday one. The German
dictionaries (from Ding, half a million heads) are kept to pairs whose English
side uses words the four smaller dictionaries know, which keeps the everyday
vocabulary and drops most specialist terms.
"""

import collections
import gzip
import os
import re
import sys

LANGUAGES = {"nl": "nld", "fr": "fra", "de": "deu", "es": "spa", "it": "ita"}
MAX_TRANSLATIONS = 6
MAX_HEAD_WORDS = 2
MAX_TRANSLATION_WORDS = 2
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
SPECIALIST = re.compile(
    r"\[(med|bot|zool|chem|anat|geol|biol|pharm|astron|min|phys|math|mil|jur"
    r"|relig|hist|ling|print|naut|aviat|ornith|entom|ichth|statist"
    r"|electr|comp|techn|constr|mach|mining|archaic|obs|poet|vulg|slang|pej"
    r"|rare|old|dated)\.?\]",
    re.IGNORECASE,
)
NOT_A_SENSE = re.compile(r"^(see|Synonyms?|Antonyms?|Note|Examples?)\b")


def b64(text):
    value = 0
    for c in text:
        value = value * 64 + B64.index(c)
    return value


def words(text):
    return re.findall(r"[^\W_]+", text)


def entries(dictd, name):
    """The text of each distinct entry of one dictionary."""
    data = gzip.open(os.path.join(dictd, f"freedict-{name}.dict.dz")).read()
    seen = set()
    with open(os.path.join(dictd, f"freedict-{name}.index"), encoding="utf-8") as index:
        for line in index:
            word, offset, length = line.rstrip("\n").split("\t")
            if word.startswith("00database"):
                continue
            span = (b64(offset), b64(length))
            if span in seen:
                continue
            seen.add(span)
            yield data[span[0] : span[0] + span[1]].decode("utf-8", "replace")


def clean(phrase):
    phrase = re.sub(r"<[^>]*>|\[[^\]]*\]|\{[^}]*\}|\"[^\"]*\"", "", phrase)
    phrase = phrase.strip(" .;:!?'\t").lower()
    if phrase.startswith("to "):
        phrase = phrase[3:]
    return " ".join(words(phrase))


def senses(text):
    """The head and its translations, in order, each with whether its sense
    is a specialist one."""
    lines = text.split("\n")
    head = re.split(r" /| <", lines[0])[0].strip().lower()
    out = []
    for line in lines[1:]:
        line = line.strip()
        if not line or line.startswith('"') or NOT_A_SENSE.match(line):
            continue
        specialist = bool(SPECIALIST.search(line))
        # Pronunciations go; a grammar mark ends a translation ("delivery
        # <n>dely" is "delivery", then the abbreviation "dely").
        line = re.sub(r"/[^/]*/", "", line)
        line = re.sub(r"<[^>]*>", ",", line)
        line = re.sub(r"^\d+\.\s*", "", re.sub(r"\([^)]*\)", "", line))
        for part in re.split(r"[,;]", line):
            phrase = clean(part)
            if phrase:
                out.append((phrase, specialist))
    return head, out


def load(dictd, name):
    """Head to its translations in order (first occurrence kept)."""
    table = collections.defaultdict(list)
    for text in entries(dictd, name):
        head, translations = senses(text)
        head_words = words(head)
        if not 1 <= len(head_words) <= MAX_HEAD_WORDS:
            continue
        if " ".join(head_words) != " ".join(words(head.replace("-", " "))):
            continue
        head = " ".join(head_words)
        for phrase, specialist in translations:
            pieces = phrase.split()
            if phrase == head or not 1 <= len(pieces) <= MAX_TRANSLATION_WORDS:
                continue
            if any(len(p) < 2 and not p.isdigit() for p in pieces):
                continue
            if all(p != phrase for p, _ in table[head]):
                table[head].append((phrase, specialist))
    return table


def rank(forward, reverse, keep=lambda head, translation: True):
    """Head to its best translations, from both dictionaries."""
    scores = collections.defaultdict(dict)

    def credit(head, translation, position, specialist, both_ways):
        if not keep(head, translation):
            return
        score = 1.0 / (1 + position) - (0.5 if specialist else 0.0)
        if both_ways:
            score += 0.5
        table = scores[head]
        table[translation] = table.get(translation, 0.0) + score

    for head, translations in forward.items():
        for position, (translation, specialist) in enumerate(translations):
            credit(head, translation, position, specialist, False)
    for target, heads in reverse.items():
        for position, (head, specialist) in enumerate(heads):
            if head != target:
                both = target in scores.get(head, {})
                credit(head, target, position, specialist, both)
    ranked = {}
    for head, table in scores.items():
        best = sorted(
            ((s, t) for t, s in table.items() if s > 0.15), key=lambda x: (-x[0], x[1])
        )
        if best:
            ranked[head] = [t for _, t in best[:MAX_TRANSLATIONS]]
    return ranked


def write(path, source, table):
    lines = [f"# {source}; GPL-2.0-or-later, see README.md\n"]
    lines += [f"{head}\t{'|'.join(t)}\n" for head, t in sorted(table.items())]
    with gzip.GzipFile(path, "wb", compresslevel=9, mtime=0) as out:
        out.write("".join(lines).encode("utf-8"))
    print(f"{os.path.basename(path)}: {len(table)} heads, {os.path.getsize(path)} bytes")


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: lexicon.py DICTD_DIR OUT_DIR")
    dictd, out_dir = sys.argv[1], sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    tables = {}
    for code in LANGUAGES.values():
        tables[f"eng-{code}"] = load(dictd, f"eng-{code}")
        tables[f"{code}-eng"] = load(dictd, f"{code}-eng")
    everyday = set()
    for code in ("nld", "fra", "spa", "ita"):
        for head in tables[f"eng-{code}"]:
            everyday.update(head.split())
        for translations in tables[f"{code}-eng"].values():
            for phrase, _ in translations:
                everyday.update(phrase.split())

    def everyday_english(phrase):
        return all(w in everyday for w in phrase.split())

    for language, code in LANGUAGES.items():
        to_en, from_en = tables[f"{code}-eng"], tables[f"eng-{code}"]
        if code == "deu":
            to_english = rank(to_en, from_en, lambda _h, t: everyday_english(t))
            from_english = rank(from_en, to_en, lambda h, _t: everyday_english(h))
        else:
            to_english = rank(to_en, from_en)
            from_english = rank(from_en, to_en)
        write(os.path.join(out_dir, f"{language}-en.tsv.gz"), f"FreeDict {code}-eng", to_english)
        write(os.path.join(out_dir, f"en-{language}.tsv.gz"), f"FreeDict eng-{code}", from_english)


if __name__ == "__main__":
    main()
