"""A crime puzzle in the style of the SQL Murder Mystery: people, licences, gym members, transcripts.

What it reproduces: a person's ``name`` in a table called ``person``; a driver's licence
number that is the integer primary key of ``drivers_license`` (and referenced by
``person.license_id``); SSNs stored as 9-digit integers, one of them the key of
``income``; a street address split over ``address_number`` and ``address_street_name``;
physical characteristics (``eye_color``, ``hair_color``, ``height``) whose values are
words like ``blue``, ``brown``, ``black``; licence plates; a gym membership id that is a
text key (``48Z7A``); event names (``SQL Symphony Concert``); and free text (interview
transcripts, crime-scene reports) that names people, streets, plates and membership ids.

Example:
    >>> specs = tables(seed=1)
    >>> person = next(t for t in specs if t.name == "person")
    >>> 100_000_000 <= person.rows["ssn"][0] <= 999_999_999
    True
"""

from __future__ import annotations

import random
from datetime import date, timedelta

import sqlalchemy as sa
from corpus_kit import KEY, Col, D, N, Q, Rows, S, Table, digits, faker, letters, pick, plate

STYLE = "crime puzzle (SQL-murder-mystery-like)"
TXT = sa.String(100)
PHYSICAL = Q(alt=("N",), why="a physical characteristic: with age, height and car it narrows a person down")
DAY = N("a date stored as an integer (20180115): the day of an event", alt=("Q",))

EYES = ["amber", "black", "blue", "brown", "gray", "green"]
HAIR = ["black", "blonde", "blue", "brown", "grey", "red", "white", "auburn"]
CARS = [("Toyota", "Prius"), ("Chevrolet", "Silverado"), ("Ford", "F-150"), ("Honda", "Civic"), ("Tesla", "Model S"),
        ("Nissan", "Altima"), ("BMW", "3 Series"), ("Subaru", "Outback"), ("Mazda", "CX-5"), ("Jeep", "Wrangler")]
EVENTS = ["SQL Symphony Concert", "The Funky Grooves Tour", "Jazz in the Park", "Rooftop Poetry Night",
          "Midnight Film Marathon", "Farmers Market Opening", "Tech Meetup", "Charity Fun Run", "Rose Bowl Parade",
          "Grace Cathedral Choir", "Hope Street Fair", "Jordan River Run", "Victoria Park Picnic", "Sterling Gala",
          "Austin Jazz Weekend", "Madison Square Concert"]
CRIMES = ["murder", "theft", "robbery", "fraud", "arson", "assault", "bribery", "smuggling", "blackmail"]
STREETS = ["Northwestern Dr", "Franklin Ave", "Washington Pl", "Lincoln Blvd", "Maple St", "Harbor Rd",
           "Elm Ct", "Sunset Way", "Ridge Ln", "Orchard Ave"]
INTERVIEWS = [
    "I heard a gunshot and then saw a man run out. He had a \"Get Fit Now Gym\" bag. The membership number on the bag "
    "started with \"{member}\". The man got into a car with a plate that included \"{plate}\".",
    "I saw the murder happen, and I recognized the killer from my gym when I was working out last week on {day}. "
    "It was {name}, I think.",
    "I was hired by a woman with a lot of money. I don't know her name but I know she's around 5'5\" and she has "
    "{hair} hair. She drives a {make} {model}. Call me back at {phone}.",
    "{name} lives on {street}. I saw them leave number {number} at midnight.",
    "I was at the {event} that night. Nothing unusual.",
]
REPORTS = [
    "Security footage shows that there were 2 witnesses. The first witness lives at the last house on \"{street}\". "
    "The second witness, named {first}, lives somewhere on \"{street2}\".",
    "A {crime} was reported near the old harbour. No witnesses came forward.",
    "Anonymous tip: the suspect drives a car with plate {plate} and was seen near {street}.",
    "{name} reported that {pronoun} wallet was stolen at the {event}.",
    "Officers responded to an alarm. The building was empty and nothing was taken.",
]


def _day(rng: random.Random) -> int:
    d = date(2017, 1, 1) + timedelta(days=rng.randint(0, 730))
    return int(d.strftime("%Y%m%d"))


def tables(seed: int = 18, people: int = 300) -> list[Table]:
    """The crime-puzzle database."""
    fake = faker(seed)
    rng = random.Random(seed)

    lic_ids = rng.sample(range(100_000, 999_999), people)
    gender = pick(rng, ["male", "female"], people)
    cars = pick(rng, CARS, people)
    plates = [plate(rng) for _ in range(people)]
    licences: Rows = {
        "id": lic_ids, "age": [rng.randint(16, 90) for _ in lic_ids], "height": [rng.randint(50, 80) for _ in lic_ids],
        "eye_color": pick(rng, EYES, people), "hair_color": pick(rng, HAIR, people), "gender": gender,
        "plate_number": plates, "car_make": [c[0] for c in cars], "car_model": [c[1] for c in cars],
    }
    person_ids = list(range(10_000, 10_000 + people))
    names = [f"{fake.first_name_male() if g == 'male' else fake.first_name_female()} {fake.last_name()}"
             for g in gender]
    ssns = rng.sample(range(100_000_000, 999_999_999), people)
    streets = pick(rng, STREETS, people)
    numbers = [rng.randint(1, 4000) for _ in person_ids]
    persons: Rows = {"id": person_ids, "name": names, "license_id": lic_ids, "address_number": numbers,
                     "address_street_name": streets, "ssn": ssns}
    n_mem = 120
    members = rng.sample(range(people), n_mem)
    mem_ids: list[str] = []
    while len(mem_ids) < n_mem:
        mid = f"{digits(rng, 2)}{letters(rng, 1)}{digits(rng, 1)}{letters(rng, 1)}"
        if mid not in mem_ids:
            mem_ids.append(mid)
    gym: Rows = {"id": mem_ids, "person_id": [person_ids[m] for m in members], "name": [names[m] for m in members],
                 "membership_start_date": [_day(rng) for _ in members],
                 "membership_status": pick(rng, ["gold", "silver", "regular"], n_mem)}
    n_checks = 400
    check_in: Rows = {"membership_id": pick(rng, mem_ids, n_checks), "check_in_date": [_day(rng) for _ in
                                                                                      range(n_checks)],
                      "check_in_time": [rng.randint(500, 2200) for _ in range(n_checks)]}
    check_in["check_out_time"] = [t + rng.randint(30, 180) for t in check_in["check_in_time"]]
    n_fb = 400
    facebook: Rows = {"person_id": pick(rng, person_ids, n_fb), "event_id": pick(rng, range(1, len(EVENTS) + 1), n_fb)}
    facebook["event_name"] = [EVENTS[e - 1] for e in facebook["event_id"]]
    facebook["date"] = [_day(rng) for _ in range(n_fb)]
    income: Rows = {"ssn": ssns[: people // 2], "annual_income": [rng.randint(10_000, 500_000) for _ in
                                                                  range(people // 2)]}

    def fill(text: str, who: int) -> str:
        return text.format(
            member=mem_ids[rng.randrange(n_mem)][:3], plate=plates[rng.randrange(people)][:4], day=_day(rng),
            name=names[who], first=names[who].split()[0], hair=rng.choice(HAIR), make=cars[who][0],
            model=cars[who][1], phone=fake.numerify("(###) ###-####"), street=streets[who],
            street2=rng.choice(STREETS), number=numbers[who], event=rng.choice(EVENTS), crime=rng.choice(CRIMES),
            pronoun=rng.choice(["his", "her"]))

    n_int = 200
    interviewees = pick(rng, range(people), n_int)
    interview: Rows = {"person_id": [person_ids[i] for i in interviewees],
                       "transcript": [fill(rng.choice(INTERVIEWS), rng.randrange(people)) for _ in interviewees]}
    n_rep = 250
    reports: Rows = {"date": [_day(rng) for _ in range(n_rep)], "type": pick(rng, CRIMES, n_rep),
                     "description": [fill(rng.choice(REPORTS), rng.randrange(people)) for _ in range(n_rep)],
                     "city": [fake.city() for _ in range(n_rep)]}
    membership = D("other_identifier", why="the gym's membership number, printed on the member's bag and card")

    return [
        Table("crime_scene_report", [
            Col("date", sa.Integer, DAY), Col("type", sa.String(20), N("a kind of crime")),
            Col("description", sa.Text, D("free_text", why="names witnesses, their streets and plates")),
            Col("city", TXT, N("where a crime happened", alt=("Q",))),
        ], reports),
        Table("drivers_license", [
            Col("id", sa.Integer, D("drivers_licence", why="the licence number itself, used as the key"), pk=True),
            Col("age", sa.Integer, Q("age")), Col("height", sa.Integer, PHYSICAL),
            Col("eye_color", sa.String(10), PHYSICAL), Col("hair_color", sa.String(10), PHYSICAL),
            Col("gender", sa.String(10), Q("gender")), Col("plate_number", sa.String(10), D("vehicle_id")),
            Col("car_make", sa.String(20), Q(alt=("N",), why="a car's make: with the model it narrows down")),
            Col("car_model", sa.String(20), Q(alt=("N",), why="a car's model: with the make it narrows down")),
        ], licences),
        Table("person", [
            Col("id", sa.Integer, KEY, pk=True), Col("name", TXT, D("full_name")),
            Col("license_id", sa.Integer, D("drivers_licence"), fk="drivers_license.id"),
            Col("address_number", sa.Integer, Q("street_address", alt=("D",), why="the house number of an address")),
            Col("address_street_name", TXT, D("street_address", alt=("Q",), why="the street of a home address")),
            Col("ssn", sa.Integer, D("national_id", why="an SSN as a 9-digit integer")),
        ], persons),
        Table("get_fit_now_member", [
            Col("id", sa.String(10), membership, pk=True),
            Col("person_id", sa.Integer, KEY, fk="person.id"), Col("name", TXT, D("full_name")),
            Col("membership_start_date", sa.Integer, DAY), Col("membership_status", sa.String(10), N("a tier")),
        ], gym),
        Table("get_fit_now_check_in", [
            Col("membership_id", sa.String(10), membership, fk="get_fit_now_member.id"),
            Col("check_in_date", sa.Integer, DAY),
            Col("check_in_time", sa.Integer, N("a time of day", alt=("Q",))),
            Col("check_out_time", sa.Integer, N("a time of day", alt=("Q",))),
        ], check_in),
        Table("facebook_event_checkin", [
            Col("person_id", sa.Integer, KEY, fk="person.id"), Col("event_id", sa.Integer, KEY),
            Col("event_name", TXT, N("an event's name")), Col("date", sa.Integer, DAY),
        ], facebook),
        Table("interview", [
            Col("person_id", sa.Integer, KEY, fk="person.id"),
            Col("transcript", sa.Text, D("free_text", why="names people, plates, membership ids and phones")),
        ], interview),
        Table("income", [
            Col("ssn", sa.Integer, D("national_id", why="an SSN as a 9-digit integer, the table's key"), pk=True),
            Col("annual_income", sa.Integer, S("financial")),
        ], income),
    ]
