#!/usr/bin/env python3
"""Compiles the FreeDict bilingual dictionaries and the emoji names of
Unicode CLDR into the lexicons search ships.

Usage: scripts/lexicon.py DICTD_DIR CLDR_ANNOTATIONS_DIR OUT_DIR

DICTD_DIR holds the dictd files (`freedict-XXX-YYY.index` and `.dict.dz`) of
the Debian packages dict-freedict-XXX-YYY between the six search languages
(eng, nld, fra, deu, spa, ita) and the pivot languages (fin, pol, ell, por,
swe), as many as Debian has. CLDR_ANNOTATIONS_DIR is `common/annotations`
of CLDR (Debian's unicode-cldr-core), with a file per language (`es.xml`).
`scripts/build-lexicon` fetches them all and runs this script.

For every ordered pair of the six languages it writes `FROM-TO.tsv.gz`
(`nl-fr.tsv.gz` is Dutch to French): one line per head word or two-word
phrase, lowercased, then a tab and at most six translations separated by
`|`, best first. Search folds and stems both sides when it loads them.

A pair's own translations come from its dictionaries in either direction.
A translation ranks by where it stands in the forward dictionary's entry and
where the head stands in the reverse dictionary's entry for it; a pair found
both ways ranks above one found one way, and a sense marked with a specialist
domain (medicine, botany, law, ...) or as figurative, dated or slang ranks
below an everyday one. The German-English dictionaries (from Ding, half a
million heads) are kept to pairs whose English side uses words the four
smaller English dictionaries know, which keeps the everyday vocabulary and
drops most specialist terms.

After its own translations a head gets those at least two pivot languages
agree on (the head into each pivot, then the pivot's word into the target),
marked with a leading `~`: search counts them less. This fills the gaps of
the small dictionaries (the Italian-English one has no "giacca"; Finnish and
Polish both lead to "jacket").

The emoji names add what everyday objects are called, which dictionaries
often miss: every emoji is named in all six languages, so the names of one
emoji translate each other ("zapatilla deportiva" is a "running shoe", its
head word "zapatilla" a "shoe"). They come after a head's first three
dictionary translations and before the pivoted ones.
"""

import collections
import gzip
import os
import re
import sys
import xml.etree.ElementTree as ElementTree

LANGUAGES = {"nl": "nld", "fr": "fra", "de": "deu", "es": "spa", "it": "ita"}
MAX_TRANSLATIONS = 6
MAX_HEAD_WORDS = 2
MAX_TRANSLATION_WORDS = 2
# Languages that only carry translations between the others: FreeDict's
# largest WikDict dictionaries pair them with English and with each of the
# five.
PIVOTS = ["fin", "pol", "ell", "por", "swe"]
# Translations of a head followed through a pivot, and of each pivot word.
PIVOT_WIDTH = 3
# Pivot languages that must agree on a translation.
MIN_PIVOTS = 2
# The emoji names (CLDR): at most this many translations of a name, after
# this many of the dictionaries', each with at least this overlap.
MAX_CONCEPTS = 3
CONCEPTS_AFTER = 3
MIN_DICE = 0.4
# Languages whose noun phrases put the head noun first, with the words that
# link a noun to its complement ("zapatillas de ballet").
LINKING_WORDS = {
    "fra": {"de", "du", "des", "à", "au", "aux", "en", "pour", "avec"},
    "spa": {"de", "del", "en", "para", "con"},
    "ita": {"di", "da", "del", "della", "a", "in", "per", "con"},
}
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
SPECIALIST = re.compile(
    r"\[(med|bot|zool|chem|anat|geol|biol|pharm|astron|min|phys|math|mil|jur"
    r"|relig|hist|ling|print|naut|aviat|ornith|entom|ichth|statist"
    r"|electr|comp|techn|constr|mach|mining|archaic|obs|poet|vulg|slang|pej"
    r"|rare|old|dated)\.?\]",
    re.IGNORECASE,
)
FIGURATIVE = re.compile(
    r"^\((figur|fig\.|argot|vieilli|familier|vulgaire|désuet|rare|obsol|dated"
    r"|slang|archaic|veraltet|umgangssprachlich|vulg|übertragen|figurato"
    r"|antiquato|gergale|figurado|coloquial|anticuado|figuurlijk|verouderd"
    r"|spreektaal)",
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
    pieces = words(phrase)
    # A sense number run into the text ("cream 2") is not a translation.
    while len(pieces) > 1 and pieces[-1].isdigit():
        pieces.pop()
    return " ".join(pieces)


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


def wikdict_senses(text):
    """Like `senses`, for the WikDict dictionaries, where each sense is a
    line of translations (numbered when there are several) followed by a
    line that defines it in the head's language."""
    lines = text.split("\n")
    head = re.split(r" /| <", lines[0])[0].strip().lower()
    out = []
    expect = True
    sense_start = 0
    for line in lines[1:]:
        line = line.strip()
        if not line:
            continue
        numbered = re.match(r"^\d+\.\s*(.*)$", line)
        if numbered:
            line, expect = numbered.group(1), True
        elif line.startswith("["):
            expect = True
        if not expect:
            # The definition: one that marks a figurative, dated or slang
            # sense demotes that sense's translations.
            if FIGURATIVE.match(line):
                out[sense_start:] = [(p, True) for p, _ in out[sense_start:]]
            continue
        expect = False
        sense_start = len(out)
        line = re.sub(r"^\[[^\]]*\]\s*", "", line)
        line = re.sub(r"\([^)]*\)", "", line)
        for part in re.split(r"[,;|]", line):
            phrase = clean(part)
            if phrase:
                out.append((phrase, False))
    return head, out


def is_wikdict(dictd, name):
    head = gzip.open(os.path.join(dictd, f"freedict-{name}.dict.dz")).read(4000)
    return b"WikDict" in head


def load(dictd, name):
    """Head to its translations in order (first occurrence kept)."""
    table = collections.defaultdict(list)
    parse = wikdict_senses if is_wikdict(dictd, name) else senses
    for text in entries(dictd, name):
        head, translations = parse(text)
        head_words = words(head)
        if not 1 <= len(head_words) <= MAX_HEAD_WORDS:
            continue
        if " ".join(head_words) != " ".join(words(head.replace("-", " "))):
            continue
        head = " ".join(head_words)
        for phrase, specialist in translations:
            pieces = phrase.split()
            if not 1 <= len(pieces) <= MAX_TRANSLATION_WORDS:
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
    lines = [f"# {source}; GPL-3.0-or-later, see README.md\n"]
    lines += [f"{head}\t{'|'.join(t)}\n" for head, t in sorted(table.items())]
    with gzip.GzipFile(path, "wb", compresslevel=9, mtime=0) as out:
        out.write("".join(lines).encode("utf-8"))
    print(f"{os.path.basename(path)}: {len(table)} heads, {os.path.getsize(path)} bytes")


def pair(tables, source, target, keep=lambda head, translation: True):
    """The ranked translations from `source` to `target`, from the
    dictionaries of that pair in either direction (empty if neither
    exists)."""
    forward = tables.get(f"{source}-{target}", {})
    reverse = tables.get(f"{target}-{source}", {})
    if not forward and not reverse:
        return {}
    return rank(forward, reverse, keep)


def triangulate(legs):
    """Translations reached through pivot languages: for each pivot, the
    head's first translations into it, then theirs into the target. A
    translation is kept only when at least two pivots reach it, which drops
    the senses a single pivot word adds (a pivot word has meanings the head
    lacks; two different pivot languages rarely share the same stray one)."""
    found = collections.defaultdict(lambda: collections.defaultdict(dict))
    for pivot, (first, second) in legs.items():
        for head, middles in first.items():
            for i, middle in enumerate(middles[:PIVOT_WIDTH]):
                for j, target in enumerate(second.get(middle, [])[:PIVOT_WIDTH]):
                    score = 1.0 / (1 + i) / (1 + j)
                    paths = found[head][target]
                    paths[pivot] = max(paths.get(pivot, 0.0), score)
    out = {}
    for head, targets in found.items():
        agreed = [
            (-len(paths), -sum(paths.values()), target)
            for target, paths in targets.items()
            if len(paths) >= MIN_PIVOTS
        ]
        if agreed:
            out[head] = [target for _, _, target in sorted(agreed)]
    return out


def merge(direct, pivoted):
    """The direct dictionaries' translations first, then pivoted ones they
    lack, marked `~` (search counts them less), at most MAX_TRANSLATIONS in
    all."""
    merged = {}
    for head in set(direct) | set(pivoted):
        translations = list(direct.get(head, []))
        for t in pivoted.get(head, []):
            if t not in translations:
                translations.append(t)
        merged[head] = [
            t if i < len(direct.get(head, [])) else f"~{t}"
            for i, t in enumerate(translations[:MAX_TRANSLATIONS])
        ]
    return merged


def concept_units(annotations, code):
    """The names of the emoji in one language's CLDR annotations: for each
    emoji, its name when it has one or two words, and the head word of a
    name of two words besides linking words (the first in French, Spanish
    and Italian, the last in English, Dutch and German: "zapatilla" of
    "zapatilla deportiva", "shoe" of "running shoe"). Keywords are left out:
    an emoji's keywords are loose associations ("fork" for the knife)."""
    language = {"eng": "en", **{c: l for l, c in LANGUAGES.items()}}[code]
    tree = ElementTree.parse(os.path.join(annotations, f"{language}.xml"))
    linking = LINKING_WORDS.get(code, set())
    units = {}
    for node in tree.getroot().iter("annotation"):
        cp = node.get("cp")
        # Emoji only: the file also names letters, punctuation, arrows and
        # mathematical signs ("less than", "em dash").
        if node.get("type") != "tts" or max(map(ord, cp)) < 0x2300:
            continue
        name = clean(node.text or "")
        content = [w for w in name.split() if w not in linking]
        head = None
        if len(content) == 2 and usable(content[0]) and usable(content[1]):
            head = content[0] if code in LINKING_WORDS else content[-1]
            # An English name ending in a participle names an action
            # ("people hugging"), not a thing.
            if code == "eng" and head.endswith("ing"):
                head = None
        units[cp] = (name if usable(name) else None, head)
    return units


def usable(phrase):
    """A phrase of one or two words, none a digit or a single letter."""
    pieces = phrase.split()
    return 1 <= len(pieces) <= MAX_TRANSLATION_WORDS and all(
        len(p) >= 2 and not p.isdigit() for p in pieces
    )


def concepts(source_units, target_units):
    """Translations from the emoji names of two languages, each emoji a
    concept both name: a name translates into the other language's name of
    the same emoji, a head word into its head word, ranked by how much the
    emoji they name overlap (Dice's coefficient), so that a word naming many
    emoji ("mujer" in every woman's) keeps only the translations that name
    most of them too. Returns the names' translations and the head words'."""
    found = []
    for kind in (0, 1):
        out = collections.defaultdict(list)
        seen_source, seen_target = collections.Counter(), collections.Counter()
        together = collections.defaultdict(collections.Counter)
        for cp in source_units.keys() & target_units.keys():
            source, target = source_units[cp][kind], target_units[cp][kind]
            seen_source[source] += 1
            seen_target[target] += 1
            if source and target:
                together[source][target] += 1
        for s, targets in together.items():
            ranked = sorted(
                (-2 * both / (seen_source[s] + seen_target[t]), t) for t, both in targets.items()
            )
            for score, t in ranked:
                if -score >= MIN_DICE and len(out[s]) < MAX_CONCEPTS:
                    out[s].append(t)
        found.append(out)
    return found


def with_concepts(direct, names, heads, known):
    """A pair's dictionary translations with the emoji names' after the
    dictionaries' first few: the dictionaries know a word's senses, the
    names know what the everyday object is called ("zapatilla" is a slipper
    to the dictionaries, a shoe to the emoji). A single word gets them only
    when it is already a head (`known`): a new head would hide the form the
    dictionaries list from a word's inflections ("frauen" is looked up as
    "frau" while it is no head)."""
    merged = dict(direct)
    for head in sorted(set(names) | set(heads)):
        if " " not in head and head not in known:
            continue
        own = direct.get(head, [])
        extra = []
        for t in names.get(head, []) + heads.get(head, []):
            if t not in own and t not in extra:
                extra.append(t)
        merged[head] = (own[:CONCEPTS_AFTER] + extra[:MAX_CONCEPTS] + own[CONCEPTS_AFTER:])[
            :MAX_TRANSLATIONS
        ]
    return merged


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: lexicon.py DICTD_DIR CLDR_ANNOTATIONS_DIR OUT_DIR")
    dictd, annotations, out_dir = sys.argv[1], sys.argv[2], sys.argv[3]
    os.makedirs(out_dir, exist_ok=True)
    codes = ["eng", *LANGUAGES.values(), *PIVOTS]
    tables = {}
    for source in codes:
        for target in codes:
            name = f"{source}-{target}"
            if source != target and os.path.exists(os.path.join(dictd, f"freedict-{name}.index")):
                tables[name] = load(dictd, name)
    everyday = set()
    for code in ("nld", "fra", "spa", "ita"):
        for head in tables[f"eng-{code}"]:
            everyday.update(head.split())
        for translations in tables[f"{code}-eng"].values():
            for phrase, _ in translations:
                everyday.update(phrase.split())

    def everyday_english(phrase):
        return all(w in everyday for w in phrase.split())

    ranked = {}

    def ranked_pair(source, target):
        if (source, target) not in ranked:
            keep = lambda _h, _t: True
            if "deu" in (source, target) and "eng" in (source, target):
                if source == "eng":
                    keep = lambda h, _t: everyday_english(h)
                else:
                    keep = lambda _h, t: everyday_english(t)
            ranked[(source, target)] = pair(tables, source, target, keep)
        return ranked[(source, target)]

    short = {"eng": "en", **{code: language for language, code in LANGUAGES.items()}}
    units = {code: concept_units(annotations, code) for code in short}
    for source in short:
        for target in short:
            if source == target:
                continue
            legs = {}
            for pivot in codes:
                if pivot in (source, target):
                    continue
                first, second = ranked_pair(source, pivot), ranked_pair(pivot, target)
                if first and second:
                    legs[pivot] = (first, second)
            direct = ranked_pair(source, target)
            pivoted = triangulate(legs)
            names, heads = concepts(units[source], units[target])
            direct = with_concepts(direct, names, heads, set(direct) | set(pivoted))
            table = merge(direct, pivoted)
            name = f"{short[source]}-{short[target]}"
            write(os.path.join(out_dir, f"{name}.tsv.gz"), f"FreeDict {source}-{target}, CLDR emoji names, pivots {'+'.join(legs)}", table)

if __name__ == "__main__":
    main()
