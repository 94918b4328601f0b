#!/usr/bin/env python3
"""Generate the retrieval evaluation set: tests/eval/corpus/ and tests/eval/questions.yaml.

Run from the repository root:  .venv/bin/python tests/eval/make_corpus.py

Twelve sources: seven spoken notes and meetings (espeak-ng speech, as the test fixtures are
made: see tests/fixtures/make_fixtures.py, whose synthesis this reuses) and five documents (PDF,
HTML with navigation boilerplate, DOCX, Markdown, plain text). Each question is phrased
differently from its source (synonyms, no copied phrase) and names the expected source and
where the answer is: the time window of the sentence that says it (exact, from the synthesis),
the PDF page, the heading of the section, or the line of a plain-text file.

The topics overlap on purpose (money in the budget review, the handbook and the board
minutes; appointments at the doctor and the garage; travel in the trip plan and the expense
rules) so that the right source has to win against plausible neighbours.

Needs espeak-ng, sox and ffmpeg on PATH, plus fpdf2 and python-docx (the `dev` extra). The
output is committed; rerunning rewrites it (the audio bytes are stable for the same tool
versions).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import tempfile
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
sys.path.insert(0, str(HERE.parent / "fixtures"))
sys.path.insert(0, str(HERE.parent / "fixtures" / "docs"))
from make_docs import make_docx, make_pdf  # noqa: E402
from make_fixtures import FF_BASE, FF_OUT, build_master, run  # noqa: E402

FIXED_DATE = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)

MP3 = ["-c:a", "libmp3lame", "-b:a", "32k", "-ac", "1", "-ar", "16000"]
OGG = ["-c:a", "libvorbis", "-q:a", "1", "-ac", "1", "-ar", "16000"]
M4A = ["-c:a", "aac", "-b:a", "32k", "-ac", "1", "-ar", "16000"]
WEBM = ["-vn", "-c:a", "libopus", "-b:a", "24k", "-ac", "1", "-ar", "16000"]

# file -> (ffmpeg encoding, origin, sentences)
SPOKEN: dict[str, tuple[list[str], str, list[str]]] = {
    "budget_review.mp3": (
        MP3,
        "meeting",
        [
            "This is the budget review for the second half of the year.",
            "Marketing spend will be cut by fifteen percent starting in July.",
            "We are pausing all new hiring until the end of September.",
            "Travel must now be approved by a director before anyone books a flight.",
            "The cloud hosting bill grew much faster than expected this spring.",
            "Engineering will move the test servers to cheaper machines at night.",
            "The finance team will publish a revised forecast in two weeks.",
            "Any department that overspends must explain it at the monthly meeting.",
        ],
    ),
    "product_launch.ogg": (
        OGG,
        "meeting",
        [
            "Planning call for the launch of the new mobile app.",
            "The launch date is set for the ninth of October.",
            "We will hold the launch event at the city science museum.",
            "About two hundred beta testers have signed up so far.",
            "The press release goes out the morning of the launch, at eight o'clock.",
            "Customer support needs a list of known bugs one week before release.",
            "The app will be free for the first three months, then five dollars a month.",
            "Sarah is in charge of the social media campaign.",
        ],
    ),
    "car_service.m4a": (
        M4A,
        "voice_note",
        [
            "Quick voice memo about the car.",
            "The garage says the front tyres are worn and should be replaced soon.",
            "The next oil change is due at sixty thousand kilometres.",
            "The mechanic also found a small crack in the windscreen.",
            "Parking at the train station costs twelve dollars a day now.",
            "I should wash the car before my parents visit next weekend.",
        ],
    ),
    "retrospective.webm": (
        WEBM,
        "meeting",
        [
            "Welcome to the team retrospective.",
            "The biggest problem this month was flaky tests in the payment service.",
            "Code reviews took three days on average, which is far too slow.",
            "We agreed that every pull request gets a reviewer within one working day.",
            "The on call rotation will change from weekly to every two weeks.",
            "Everyone liked the new deployment dashboard.",
            "Next month we will try pair programming on Fridays.",
        ],
    ),
    "doctor_followup.mp3": (
        MP3,
        "voice_note",
        [
            "Notes from my follow up visit with the doctor.",
            "My blood pressure is still a little high, so the dose stays the same.",
            "I should take the tablet every morning with breakfast.",
            "The doctor wants me to eat less salt and walk thirty minutes a day.",
            "The blood test results were normal.",
            "The next check up is in three months.",
        ],
    ),
    "interview_notes.ogg": (
        OGG,
        "voice_note",
        [
            "Notes from the interview with the backend candidate.",
            "She has six years of experience running Kubernetes in production.",
            "Her salary expectation is around ninety thousand a year.",
            "She can start in January after her notice period ends.",
            "The coding exercise was solid, but her tests were a bit thin.",
            "I recommend we invite her for a final round with the team lead.",
        ],
    ),
    "lisbon_trip.m4a": (
        M4A,
        "voice_note",
        [
            "Planning notes for the trip to Lisbon in May.",
            "The flight leaves on Thursday evening and returns the following Monday.",
            "We booked a small hotel near the old castle, with breakfast included.",
            "On Saturday we want to visit the tile museum.",
            "Remember to buy a travel card for the trams and the metro.",
            "The restaurant on the river needs a reservation two weeks ahead.",
        ],
    ),
}

SECURITY_PAGES = [
    (
        "Acme Security Policy",
        (
            "This policy applies to every employee and contractor. Passwords must be at least "
            "fourteen characters long and are never shared, not even with the help desk. "
            "Multi factor authentication is required for email and the VPN."
        ),
    ),
    (
        "Devices",
        (
            "Every laptop must use full disk encryption. A lost or stolen device must be reported "
            "to the security team within one hour. Personal USB drives are not allowed on company "
            "machines."
        ),
    ),
    (
        "Incidents and reviews",
        (
            "Suspicious emails are forwarded to the phishing mailbox and then deleted. Security "
            "incidents are reviewed every Wednesday by the response team. Access rights are "
            "reviewed every quarter by each manager."
        ),
    ),
]

RECIPE_SECTIONS = [
    (
        "Feeding the starter",
        (
            "Feed the starter with equal weights of flour and water twelve hours before baking. "
            "It is ready when it has doubled in size and smells slightly sour."
        ),
    ),
    (
        "Mixing the dough",
        (
            "Mix 500 grams of bread flour with 375 grams of water, a hydration of seventy five "
            "percent, and rest the dough for thirty minutes before adding ten grams of salt."
        ),
    ),
    (
        "Baking",
        (
            "Bake in a covered cast iron pot at 250 degrees Celsius for twenty minutes. Then remove "
            "the lid and bake for another twenty five minutes, until the crust is deep brown."
        ),
    ),
]

RECIPE_HTML = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Country sourdough | The Crumb Journal</title></head>
<body>
<header>
  <nav><a href="/">Home</a> | <a href="/recipes">Recipes</a> | <a href="/shop">Shop our flour</a> |
  <a href="/newsletter">Newsletter</a> | <a href="/login">Sign in</a></nav>
  <p class="promo">Free shipping on orders over 50 euros this week only!</p>
</header>
<main>
<article>
<h1>Country sourdough</h1>
<p>A crusty everyday loaf with an open crumb, written up after many weekends of practice.</p>
{sections}
</article>
</main>
<aside><h3>Popular posts</h3><ul><li><a href="/banana-bread">Banana bread</a></li>
<li><a href="/pizza">Weeknight pizza dough</a></li></ul></aside>
<footer><p>Subscribe to our newsletter for a new recipe every week. Copyright The Crumb Journal.
<a href="/privacy">Privacy</a> <a href="/cookies">Cookie settings</a></p></footer>
</body>
</html>
"""

HANDBOOK_SECTIONS = [
    (
        "Holidays",
        (
            "Full time staff receive twenty eight days of paid leave each year, including public "
            "holidays. Up to five unused days can be carried over into the next year."
        ),
    ),
    (
        "Remote work",
        (
            "Employees may work from home up to three days a week after their probation period. "
            "The company pays a one-time allowance of four hundred euros for a home office chair "
            "and desk."
        ),
    ),
    (
        "Expenses",
        (
            "Expense claims must be submitted within thirty days with an itemised receipt. Meals "
            "while travelling are reimbursed up to forty euros per day."
        ),
    ),
]

HOME_NETWORK_MD = """\
# Home network

How the network at home is set up, for whoever has to fix it.

## Router

The router sits in the hallway cupboard. Its admin page is at 192.168.1.1 and firmware
updates are installed automatically on Sunday nights.

## Wi-Fi

The guest network is called Garden and its password is printed on the card stuck to the
fridge. The main network is only for our own laptops and phones.

## Backups

The NAS in the study backs up every laptop at two in the morning. Once a month, copy the
photo folder to the external drive kept at grandma's house.

## Printer

The printer only works over cable; if it stops, turn it off and on and check the paper tray.
"""

BOARD_MINUTES_TXT = """\
Minutes of the board meeting, 3 June

Attendees: the full board, the chief executive and the head of finance.

Office move: the company will move to the new building on Harbour Street in November. The lease on the current office ends in December.

Results: revenue for the quarter was 4.2 million, eight percent above plan, while costs stayed flat.

Appointments: the board approved the appointment of a new chief financial officer, who joins on 1 September.

Other business: the staff survey will run in July, and the summer party is cancelled this year to save money.
"""

# (question, source, where): where is a sentence index (spoken), a page number (PDF), a
# heading (HTML, DOCX, Markdown) or a line number (plain text).
QUESTIONS: list[tuple[str, str, int | str]] = [
    ("How much are we reducing the advertising budget?", "budget_review.mp3", 1),
    ("Is there a freeze on recruiting people?", "budget_review.mp3", 2),
    ("Who has to sign off before I buy a plane ticket for work?", "budget_review.mp3", 3),
    ("Why are our infrastructure costs a worry?", "budget_review.mp3", 4),
    ("When will the updated financial projection be ready?", "budget_review.mp3", 6),
    ("What day does the app go live?", "product_launch.ogg", 1),
    ("Where is the release party taking place?", "product_launch.ogg", 2),
    ("How many people are trying the early version?", "product_launch.ogg", 3),
    ("What will the subscription cost once the trial is over?", "product_launch.ogg", 6),
    ("Who runs our posts on social networks for the launch?", "product_launch.ogg", 7),
    ("What did the mechanic say about the wheels?", "car_service.m4a", 1),
    ("At what distance is the engine oil due?", "car_service.m4a", 2),
    ("Is the front glass of the car damaged?", "car_service.m4a", 3),
    ("How expensive is it to leave the car at the station?", "car_service.m4a", 4),
    ("Which part of the system had unreliable automated checks?", "retrospective.webm", 1),
    ("How long did people wait for feedback on their changes?", "retrospective.webm", 2),
    ("What new rule did we set for reviewing code?", "retrospective.webm", 3),
    ("How often will engineers be on duty for incidents?", "retrospective.webm", 4),
    ("What working style are we going to experiment with?", "retrospective.webm", 6),
    ("Did my medication change?", "doctor_followup.mp3", 1),
    ("When should I take my pills?", "doctor_followup.mp3", 2),
    ("What lifestyle changes were recommended to me?", "doctor_followup.mp3", 3),
    ("What did the lab work show?", "doctor_followup.mp3", 4),
    ("When is my next medical appointment?", "doctor_followup.mp3", 5),
    ("How long has the applicant worked with container orchestration?", "interview_notes.ogg", 1),
    ("What pay is the candidate asking for?", "interview_notes.ogg", 2),
    ("When could the new hire join us?", "interview_notes.ogg", 3),
    ("What was weak in her programming assignment?", "interview_notes.ogg", 4),
    ("What is the next step with the applicant?", "interview_notes.ogg", 5),
    ("When do we fly out and come back?", "lisbon_trip.m4a", 1),
    ("Where are we staying in Portugal?", "lisbon_trip.m4a", 2),
    ("What do we need for public transport in the city?", "lisbon_trip.m4a", 4),
    ("Do we have to book the dinner by the water in advance?", "lisbon_trip.m4a", 5),
    ("How long does a password have to be?", "security_policy.pdf", 1),
    ("What must I do if my work computer gets stolen?", "security_policy.pdf", 2),
    ("Can I plug my own memory stick into the office laptop?", "security_policy.pdf", 2),
    ("What should I do with a suspected scam message?", "security_policy.pdf", 3),
    ("How often are permissions audited?", "security_policy.pdf", 3),
    ("How do I know the sourdough culture is active?", "sourdough.html", "Feeding the starter"),
    ("What ratio of liquid to flour does the loaf use?", "sourdough.html", "Mixing the dough"),
    ("What oven temperature is the bread cooked at?", "sourdough.html", "Baking"),
    ("When should the lid come off the pot?", "sourdough.html", "Baking"),
    ("How many vacation days do I get?", "employee_handbook.docx", "Holidays"),
    ("Can I roll over leave I did not use?", "employee_handbook.docx", "Holidays"),
    ("How often am I allowed to work from my apartment?", "employee_handbook.docx", "Remote work"),
    ("Is there money for home office furniture?", "employee_handbook.docx", "Remote work"),
    ("What is the daily limit for food on business trips?", "employee_handbook.docx", "Expenses"),
    ("What is the deadline for getting reimbursed?", "employee_handbook.docx", "Expenses"),
    ("Where can visitors find the wireless code?", "home_network.md", "Wi-Fi"),
    ("When do the computers get copied automatically?", "home_network.md", "Backups"),
    ("Where is the offsite copy of our pictures kept?", "home_network.md", "Backups"),
    ("Where is the internet box physically located?", "home_network.md", "Router"),
    ("When are we relocating to the new premises?", "board_minutes.txt", 5),
    ("How did quarterly sales compare with the target?", "board_minutes.txt", 7),
    ("Who is joining the leadership team in the autumn?", "board_minutes.txt", 9),
    ("Is there going to be a summer celebration?", "board_minutes.txt", 11),
]

# People also search by a name, number or place they remember: these keep one distinctive term
# from the source (which the keyword half of hybrid search is for) and word the rest their own way.
ENTITY_QUESTIONS: list[tuple[str, str, int | str]] = [
    ("What is Sarah responsible for?", "product_launch.ogg", 7),
    ("Anything about the Harbour Street building?", "board_minutes.txt", 5),
    ("How do I get to 192.168.1.1?", "home_network.md", "Router"),
    ("What is on the Lisbon agenda for Saturday?", "lisbon_trip.m4a", 3),
    ("What went wrong with the payment service?", "retrospective.webm", 1),
    ("What does the NAS do overnight?", "home_network.md", "Backups"),
    ("Is multi factor authentication mandatory?", "security_policy.pdf", 1),
    ("What is the password for the Garden network?", "home_network.md", "Wi-Fi"),
]


def make_html() -> bytes:
    sections = "\n".join(f"<h2>{h}</h2>\n<p>{body}</p>" for h, body in RECIPE_SECTIONS)
    return RECIPE_HTML.format(sections=sections).encode("utf-8")


def expected(source: str, where: int | str, timings: dict[str, list[dict]]) -> tuple[dict, str]:
    """The expected location of an answer and the evidence text (for a reader of the YAML)."""
    if source in timings:
        sentence = timings[source][int(where)]
        return {"window": [round(sentence["start_s"], 3), round(sentence["end_s"], 3)]}, sentence["text"]
    if source.endswith(".pdf"):
        return {"page": int(where)}, SECURITY_PAGES[int(where) - 1][1]
    if source.endswith(".txt"):
        line = BOARD_MINUTES_TXT.splitlines()[int(where) - 1]
        assert line.strip(), (source, where)
        return {"lines": [int(where), int(where)]}, line
    sections = {"sourdough.html": RECIPE_SECTIONS, "employee_handbook.docx": HANDBOOK_SECTIONS}.get(source)
    if sections is not None:
        return {"heading": where}, dict(sections)[where]
    body = HOME_NETWORK_MD.split(f"## {where}\n", 1)[1].split("\n## ", 1)[0].strip()
    return {"heading": where}, " ".join(body.split())


def main() -> None:
    CORPUS.mkdir(parents=True, exist_ok=True)
    timings: dict[str, list[dict]] = {}
    origins: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="grace_eval_") as tmp:
        for fname, (encoding, origin, sentences) in SPOKEN.items():
            master, timing = build_master(Path(fname).stem, sentences, Path(tmp))
            run([*FF_BASE, "-i", str(master), *encoding, *FF_OUT, str(CORPUS / fname)])
            timings[fname] = timing
            origins[fname] = origin
    (CORPUS / "security_policy.pdf").write_bytes(make_pdf(SECURITY_PAGES))
    (CORPUS / "sourdough.html").write_bytes(make_html())
    (CORPUS / "employee_handbook.docx").write_bytes(
        make_docx(
            "Employee handbook",
            "The rules that apply to everyone on the payroll, in plain words.",
            HANDBOOK_SECTIONS,
            author="Grace eval",
        )
    )
    (CORPUS / "home_network.md").write_text(HOME_NETWORK_MD, encoding="utf-8")
    (CORPUS / "board_minutes.txt").write_text(BOARD_MINUTES_TXT, encoding="utf-8")
    for name in (
        "security_policy.pdf",
        "sourdough.html",
        "employee_handbook.docx",
        "home_network.md",
        "board_minutes.txt",
    ):
        origins[name] = "document"

    questions = []
    styled = [(q, "paraphrase") for q in QUESTIONS] + [(q, "entity") for q in ENTITY_QUESTIONS]
    for n, ((question, source, where), style) in enumerate(styled, start=1):
        assert (CORPUS / source).is_file(), source
        location, evidence = expected(source, where, timings)
        questions.append(
            {
                "id": f"q{n:02d}",
                "question": question,
                "style": style,
                "source": source,
                **location,
                "evidence": evidence,
            }
        )
    header = (
        "# Retrieval evaluation set: generated by tests/eval/make_corpus.py (edit there, then rerun).\n"
        "# Each question names the expected source and where the answer is: `window` (seconds of the\n"
        "# sentence that says it), `page` (PDF), `heading` (section) or `lines` (plain text).\n"
        "# `evidence` is the source text, for a reader. `paraphrase` questions share no phrase with it;\n"
        "# `entity` questions keep one name, number or place a person would remember.\n"
    )
    document = {
        "corpus": "corpus",
        "sources": [{"file": f, "origin": origins[f]} for f in sorted(origins)],
        "questions": questions,
    }
    (HERE / "questions.yaml").write_text(
        header + yaml.safe_dump(document, sort_keys=False, width=100, allow_unicode=True), encoding="utf-8"
    )
    (CORPUS / "timings.json").write_text(json.dumps(timings, indent=1) + "\n", encoding="utf-8")
    print(f"{len(origins)} sources, {len(questions)} questions -> {HERE}")


if __name__ == "__main__":
    main()
