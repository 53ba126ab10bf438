"""Speaker tags to names, for dialogue summarization data such as DialogSum's train file, whose
dialogues and summaries say ``#Person1#``, ``#Person2#``... where its validation and test files say
names. Each tag in a dialogue and its summary becomes one name, the same everywhere in that record:

1. the name the dialogue uses for that speaker: a self-introduction in the speaker's own turns
   ("I'm Doctor Hawkins", "my name is Lucy") or, with two speakers, how the other one addresses them
   ("Hello Mrs. Parker, ...", "..., Jimmy?"). A word counts as a name only if it is capitalized and
   rare in lower case across the corpus (so "I'm Sorry" names nobody);
2. else a deterministic pick from ``FIRST_NAMES``, seeded by the dialogue's text and the tag, never a
   word the dialogue already contains and never a name another speaker of the record has."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable

TAG = re.compile(r"#person(\d+)#", re.IGNORECASE)
_NAME = r"((?:(?:Mr|Mrs|Ms|Dr|Miss|Doctor|Professor)\.?\s+)?[A-Z][a-z]+(?:\s+[A-Z][a-z]+)?)"
SELF = re.compile(r"(?:\bI'm|\bI am|\b[Mm]y name is|\b[Mm]y name's|\bThis is|\bit's|\bIt's)\s+" + _NAME + r"\b")
GREETING = re.compile(r"^(?:Hi|Hello|Hey|Good (?:morning|afternoon|evening)|Excuse me|Thanks|Thank you|Sorry|"
                      r"Well|Oh|Yes|No|Dear|Welcome),?\s+" + _NAME + r"\s*[,.!?]")
CLOSING = re.compile(r",\s*" + _NAME + r"\s*[.?!]+\s*$")
TITLES = {"Mr", "Mrs", "Ms", "Dr", "Miss", "Doctor", "Professor"}
NOT_NAMES = {  # capitalized, rare in lower case, and still no one's name ("It's Saturday", "I'm Chinese")
    "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday", "January", "February", "March",
    "April", "June", "July", "August", "September", "October", "November", "December", "Christmas", "Easter",
    "English", "Chinese", "American", "British", "Japanese", "French", "German", "Canadian", "Australian",
    "Korean", "Indian", "Italian", "Spanish", "Mexican", "Russian", "Irish", "Scottish", "Dutch", "Swedish",
    "China", "America", "England", "Japan", "Beijing", "London", "New", "God", "Internet", "OK", "Ok", "Okay",
    "Yes", "Daddy", "Mommy", "Mom", "Dad", "Mister", "Sir", "Madam", "Asian", "Mormon"}

FIRST_NAMES = (
    "Aaron", "Abigail", "Adam", "Alice", "Alan", "Amanda", "Amy", "Andrew", "Angela", "Anna", "Anthony", "Ashley",
    "Barbara", "Ben", "Benjamin", "Beth", "Brandon", "Brenda", "Brian", "Bruce", "Carl", "Carol", "Caroline",
    "Catherine", "Charles", "Chloe", "Chris", "Christina", "Claire", "Daniel", "David", "Deborah", "Dennis", "Diana",
    "Donna", "Dorothy", "Douglas", "Dylan", "Edward", "Elena", "Elizabeth", "Ella", "Emily", "Emma", "Eric", "Ethan",
    "Evelyn", "Fiona", "Frank", "Gabriel", "Gary", "George", "Grace", "Greg", "Hannah", "Harold", "Heather", "Helen",
    "Henry", "Isabel", "Jack", "Jacob", "James", "Janet", "Jason", "Jeffrey", "Jennifer", "Jessica", "Joan", "John",
    "Jonathan", "Joseph", "Joshua", "Judy", "Julia", "Justin", "Karen", "Kate", "Keith", "Kelly", "Kenneth", "Kevin",
    "Kyle", "Laura", "Lauren", "Linda", "Lisa", "Logan", "Louis", "Lucy", "Madison", "Margaret", "Maria", "Martha",
    "Matthew", "Megan", "Melissa", "Michael", "Michelle", "Nancy", "Natalie", "Nathan", "Nicholas", "Nicole",
    "Olivia", "Oscar", "Pamela", "Patrick", "Paul", "Peter", "Rachel", "Raymond", "Rebecca", "Richard", "Robert",
    "Ronald", "Ruth", "Ryan", "Samantha", "Samuel", "Sandra", "Sarah", "Scott", "Sean", "Sharon", "Sophia",
    "Stephanie", "Steven", "Susan", "Teresa", "Thomas", "Timothy", "Tyler", "Victoria", "Vincent", "Walter",
    "William", "Zachary",
)


def lowercase_words(texts: Iterable[str]) -> set[str]:
    """The corpus's common words: those seen in lower case at least half as often as capitalized (so
    "Sorry" and "Bill" are words, "Smith" and "Jack" names)."""
    lower: Counter = Counter()
    upper: Counter = Counter()
    for text in texts:
        for w in re.findall(r"[A-Za-z]+", text):
            (lower if w[0].islower() else upper)[w.lower()] += 1
    return {w for w, n in lower.items() if 2 * n >= upper[w]}


def _turns(dialogue: str) -> list[tuple[str, str]]:
    """(tag number, utterance) per tagged line."""
    out = []
    for line in dialogue.splitlines():
        m = re.match(r"\s*#person(\d+)#\s*:?\s*(.*)", line, re.IGNORECASE)
        if m:
            out.append((m.group(1), m.group(2)))
    return out


def _is_name(candidate: str, common: set[str]) -> bool:
    words = [w.rstrip(".") for w in candidate.split()]
    rest = [w for w in words if w not in TITLES]
    return bool(rest) and all(w.lower() not in common and w not in NOT_NAMES for w in rest)


def _clean(candidate: str, common: set[str]) -> str | None:
    """The candidate, cut back to the words that are names (``Jimmy Let`` -> ``Jimmy``), or None."""
    words = candidate.split()
    while words and not _is_name(" ".join(words), common):
        words = words[:-1]
    name = " ".join(words)
    return name if words and name.rstrip(".") not in TITLES else None


def names_used(dialogue: str, common: set[str]) -> dict[str, str]:
    """Tag number -> the name the dialogue itself gives that speaker, where it gives one."""
    turns = _turns(dialogue)
    speakers = sorted({n for n, _ in turns}, key=int)
    found: dict[str, str] = {}
    for n, text in turns:
        for m in SELF.finditer(text):
            name = _clean(m.group(1), common)
            if name and n not in found:
                found[n] = name
    if len(speakers) == 2:
        for n, text in turns:
            other = speakers[1] if n == speakers[0] else speakers[0]
            for pattern in (GREETING, CLOSING):
                m = pattern.search(text)
                name = _clean(m.group(1), common) if m else None
                if name and other not in found:
                    found[other] = name
    seen: set[str] = set()
    for n in sorted(found, key=int):  # two speakers never share a name
        if found[n] in seen:
            del found[n]
        else:
            seen.add(found[n])
    return found


def pick_name(dialogue: str, tag: str, taken: set[str]) -> str:
    start = int(hashlib.sha256(f"{dialogue}\0{tag}".encode()).hexdigest(), 16) % len(FIRST_NAMES)
    words = set(re.findall(r"[A-Za-z]+", dialogue))
    for k in range(len(FIRST_NAMES)):
        name = FIRST_NAMES[(start + k) % len(FIRST_NAMES)]
        if name not in taken and name not in words:
            return name
    raise ValueError("more speakers than first names")


def replace_speaker_tags(dialogue: str, summary: str, common: set[str]) -> tuple[str, str]:
    """``dialogue`` and ``summary`` with every ``#PersonN#`` replaced by that speaker's one name."""
    tags = sorted({m.group(1) for m in TAG.finditer(dialogue + "\n" + summary)}, key=int)
    if not tags:
        return dialogue, summary
    names = names_used(dialogue, common)
    taken = set(names.values())
    for n in tags:
        if n not in names:
            names[n] = pick_name(dialogue, n, taken)
            taken.add(names[n])

    def sub(text: str) -> str:
        return TAG.sub(lambda m: names[m.group(1)], text)

    return sub(dialogue), sub(summary)


# Speaker anonymization (``tokenize.speakers: anonymize``): the model reads and writes ``#PersonN#``
# for a dialogue's speakers, and its outputs get the names back. A name is then one learnt token
# instead of sub-word pieces the decoder has to spell (and garbles), which is how DialogSum was
# released; any "Name: utterance" dialogue works, names the dialogue never gives a turn stay as they are.
SPEAKER = re.compile(r"^[ \t]*([A-Za-z][\w.' -]{0,39}?)[ \t]*:", re.MULTILINE)
PLACEHOLDER = re.compile(r"#Person(\d+)#")
MAX_SPEAKERS = 9


def dialogue_speakers(source: str) -> list[str]:
    """The names that open the dialogue's turns ("Ms. Dawson: ..."), in order of first turn (at most
    ``MAX_SPEAKERS``; more are left as names)."""
    out: list[str] = []
    for m in SPEAKER.finditer(source):
        name = m.group(1).strip()
        if name not in out and len(name.split()) <= 4 and not PLACEHOLDER.fullmatch(name):
            out.append(name)
    return out[:MAX_SPEAKERS]


def anonymize(text: str, speakers: list[str]) -> str:
    """Each speaker's name (whole words, case-sensitive; the longest first) -> ``#PersonN#``."""
    if not speakers:
        return text
    index = {name: n for n, name in enumerate(speakers, start=1)}
    pattern = re.compile(r"(?<![\w#])(" + "|".join(re.escape(s) for s in sorted(speakers, key=len, reverse=True))
                         + r")(?![\w#])")
    return pattern.sub(lambda m: f"#Person{index[m.group(1)]}#", text)


def restore(text: str, speakers: list[str]) -> str:
    """``#PersonN#`` -> the dialogue's N-th speaker (a number with no speaker stays a tag)."""
    return PLACEHOLDER.sub(lambda m: speakers[int(m.group(1)) - 1] if 0 < int(m.group(1)) <= len(speakers)
                           else m.group(0), text)
