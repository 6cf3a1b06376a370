"""A generated SQLite database in the styles of public sample databases, with per-column ground truth.

It reproduces the classes of identifiers a scan has to find and the non-personal columns it
must leave alone:

* health records (Synthea style): patients whose first, last and maiden names carry digits
  (``Margorie48``, ``Cormier289``), accents and capitals; SSNs in the 9xx test range;
  driver's licence and passport numbers; prefixes and suffixes; race, ethnicity, gender;
  a birthplace (a place, not a date); payer transitions with member ids and the policy
  holder's name; device UDIs and serial numbers; clinicians whose full names no dictionary
  knows; organisations and payers whose addresses and phones are not personal;
* a crime puzzle (drivers' eye and hair colours, plates, event names, SSNs as integers);
* a music store (genres, albums, tracks with ``genre_id``, customers with two-letter state codes);
* an HR-and-vehicles corner (emergency contacts, guarantors, VINs, IMEIs, MAC addresses,
  a French ``genre`` that is a gender and a film ``genre`` that is not).

``build(path, rows)`` writes it and returns ``GROUND_TRUTH``: (table, column) -> (classification, kind);
``copy_to(path, url)`` copies it to a PostgreSQL or MariaDB database.
"""

from __future__ import annotations

import random
import sqlite3
import string
import uuid
from pathlib import Path

import sqlalchemy as sa
from faker import Faker

from datastage.identify import reference as pii

D, Q, S, N = "direct_identifier", "quasi_identifier", "sensitive", "non_personal"

GROUND_TRUTH: dict[tuple[str, str], tuple[str, str | None]] = {}


def _truth(table: str, columns: dict[str, tuple[str, str | None]]) -> None:
    for column, expected in columns.items():
        GROUND_TRUTH[(table, column)] = expected


_truth("patients", {
    "Id": (N, None), "BIRTHDATE": (Q, "date_of_birth"), "DEATHDATE": (Q, "event_date"), "SSN": (D, "national_id"),
    "DRIVERS": (D, "drivers_licence"), "PASSPORT": (D, "passport"), "PREFIX": (Q, "name_affix"),
    "FIRST": (D, "first_name"), "LAST": (D, "last_name"), "SUFFIX": (Q, "name_affix"), "MAIDEN": (D, "last_name"),
    "MARITAL": (N, None), "RACE": (S, "ethnicity"), "ETHNICITY": (S, "ethnicity"), "GENDER": (Q, "gender"),
    "BIRTHPLACE": (Q, "city"), "ADDRESS": (D, "street_address"), "CITY": (Q, "city"), "STATE": (N, None),
    "COUNTY": (Q, "city"), "ZIP": (Q, "postcode"), "LAT": (Q, "geo_coordinates"), "LON": (Q, "geo_coordinates"),
    "HEALTHCARE_EXPENSES": (S, "financial"), "INCOME": (S, "financial"),
    "emergency_contact_name": (D, "full_name"), "emergency_contact_phone": (D, "phone"),
    "legacy_ref": (D, "national_id"),
})
_truth("providers", {
    "Id": (N, None), "ORGANIZATION": (N, None), "NAME": (D, "full_name"), "GENDER": (Q, "gender"),
    "SPECIALITY": (N, None), "ADDRESS": (D, "street_address"), "CITY": (Q, "city"), "STATE": (N, None),
    "ZIP": (Q, "postcode"), "ENCOUNTERS": (N, None),
})
_truth("organizations", {
    "Id": (N, None), "NAME": (N, None), "ADDRESS": (N, None), "CITY": (N, None), "STATE": (N, None), "ZIP": (N, None),
    "PHONE": (N, None), "REVENUE": (N, None),
})
_truth("payers", {
    "Id": (N, None), "NAME": (N, None), "ADDRESS": (N, None), "CITY": (N, None), "STATE_HEADQUARTERED": (N, None),
    "ZIP": (N, None), "PHONE": (N, None),
})
_truth("payer_transitions", {
    "PATIENT": (N, None), "MEMBERID": (D, "health_plan_id"), "START_YEAR": (N, None), "END_YEAR": (N, None),
    "PAYER": (N, None), "PLAN_OWNERSHIP": (N, None), "OWNER_NAME": (D, "full_name"),
    "subscriber_id": (D, "health_plan_id"), "policy_holder_name": (D, "full_name"),
})
_truth("devices", {
    "START": (N, None), "PATIENT": (N, None), "CODE": (S, "health_condition"),
    "DESCRIPTION": (S, "health_condition"), "UDI": (D, "device_id"), "SERIAL_NUMBER": (D, "device_id"),
})
_truth("encounters", {
    "Id": (N, None), "START": (N, None), "PATIENT": (N, None), "PROVIDER": (N, None), "ENCOUNTERCLASS": (N, None),
    "REASONDESCRIPTION": (S, "health_condition"), "BASE_ENCOUNTER_COST": (N, None),
})
_truth("conditions", {
    "START": (N, None), "PATIENT": (N, None), "CODE": (S, "health_condition"), "DESCRIPTION": (S, "health_condition"),
})
_truth("clinicians", {
    "clinician_id": (N, None), "first": (D, "first_name"), "last": (D, "last_name"), "npi": (D, "licence_number"),
    "email": (D, "email"), "department": (N, None), "mrn_prefix": (N, None),
})
_truth("drivers_license", {
    # The licence number is the key: a number the person carries (tests/corpus/LABELS.md, rule 1).
    "id": (D, "drivers_licence"), "age": (Q, "age"), "height": (N, None), "eye_color": (N, None),
    "hair_color": (N, None),
    "gender": (Q, "gender"), "plate_number": (D, "vehicle_id"), "car_make": (N, None), "car_model": (N, None),
})
_truth("person", {
    "id": (N, None), "name": (D, "full_name"), "license_id": (D, "drivers_licence"), "address_number": (N, None),
    "address_street_name": (D, "street_address"), "ssn": (D, "national_id"),
})
_truth("facebook_event_checkin", {"person_id": (N, None), "event_id": (N, None), "event_name": (N, None),
                                  "date": (N, None)})
_truth("get_fit_now_member", {"id": (D, "other_identifier"), "person_id": (N, None), "name": (D, "full_name"),
                              "membership_status": (N, None)})
_truth("genre", {"GenreId": (N, None), "Name": (N, None)})
_truth("album", {"AlbumId": (N, None), "Title": (N, None), "ArtistId": (N, None)})
_truth("artist", {"ArtistId": (N, None), "Name": (N, None)})
_truth("track", {"TrackId": (N, None), "Name": (N, None), "AlbumId": (N, None), "GenreId": (N, None),
                 "genre_id": (N, None), "Milliseconds": (N, None)})
_truth("customer", {
    "CustomerId": (N, None), "FirstName": (D, "first_name"), "LastName": (D, "last_name"), "Company": (N, None),
    "Address": (D, "street_address"), "City": (Q, "city"), "State": (N, None), "Country": (N, None),
    "PostalCode": (Q, "postcode"), "Phone": (D, "phone"), "Email": (D, "email"),
})
_truth("employees", {
    "employee_id": (N, None), "cust_first_name": (D, "first_name"), "guarantor_first": (D, "first_name"),
    "guarantor_last": (D, "last_name"), "TitleOfCourtesy": (Q, "name_affix"), "Title": (N, None),
    "HomePhone": (D, "phone"), "hire_date": (Q, "event_date"), "employee_number": (D, "other_identifier"),
    "badge": (N, None), "locker_code": (D, "other_identifier"), "shift_code": (N, None),
})
_truth("vehicles", {"vehicle_id": (N, None), "vin": (D, "vehicle_id"), "license_plate": (D, "vehicle_id"),
                    "colour": (N, None), "owner_name": (D, "full_name")})
_truth("phones_inventory", {"item_id": (N, None), "imei": (D, "device_id"), "mac_address": (D, "device_id"),
                            "model": (N, None)})
_truth("clients", {"client_id": (N, None), "prenom": (D, "first_name"), "nom": (D, "last_name"),
                   "genre": (Q, "gender"), "telephone": (D, "phone"), "ville": (Q, "city")})
_truth("films", {"film_id": (N, None), "titre": (N, None), "genre": (N, None)})

_SYLLABLES = ["ma", "ri", "go", "ne", "tor", "ve", "lin", "da", "quo", "zel", "bri", "fen", "ul", "dra", "mo", "kes",
              "pel", "tui", "rha", "syl", "vor", "ande", "eth", "ix", "nor", "bel", "cha", "dor", "wyn", "gus"]


def invented_name(rng: random.Random) -> str:
    """A capitalised name that no name dictionary holds."""
    while True:
        word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()
        if pii.distinctive_name(word):
            return word


def _ssn(rng: random.Random) -> str:
    return f"999-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}"


def _vin(rng: random.Random) -> str:
    from datastage.identify.devices import _VIN_VALUES, _VIN_WEIGHTS

    alphabet = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
    body = [rng.choice(alphabet) for _ in range(17)]
    total = sum(_VIN_VALUES[c] * w for c, w in zip(body, _VIN_WEIGHTS, strict=True) if w)
    check = total % 11
    body[8] = "X" if check == 10 else str(check)
    return "".join(body)


def _luhn_complete(body: str) -> str:
    from datastage.cards import luhn_check_digit

    return body + luhn_check_digit(body)


def build(path: Path, rows: int = 1000, seed: int = 7) -> dict[tuple[str, str], tuple[str, str | None]]:
    """Write the database to ``path`` (``rows`` rows in the large tables) and return the ground truth."""
    rng = random.Random(seed)
    fake = Faker("en_US")
    fake.seed_instance(seed)
    path.unlink(missing_ok=True)
    conn = sqlite3.connect(path)
    ids = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(rows)]
    org_ids = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(max(10, rows // 10))]
    payer_ids = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(10)]
    provider_ids = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(max(20, rows // 5))]
    encounter_ids = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(rows)]
    states = ["Massachusetts", "New York", "California", "Texas", "Ohio"]
    cities = [fake.city() for _ in range(60)]

    def street() -> str:
        return fake.street_address()

    conn.executescript("""
        CREATE TABLE organizations (Id TEXT PRIMARY KEY, NAME TEXT, ADDRESS TEXT, CITY TEXT, STATE TEXT, ZIP TEXT,
                                    PHONE TEXT, REVENUE REAL);
        CREATE TABLE payers (Id TEXT PRIMARY KEY, NAME TEXT, ADDRESS TEXT, CITY TEXT, STATE_HEADQUARTERED TEXT,
                             ZIP TEXT, PHONE TEXT);
        CREATE TABLE patients (Id TEXT PRIMARY KEY, BIRTHDATE TEXT, DEATHDATE TEXT, SSN TEXT, DRIVERS TEXT,
            PASSPORT TEXT, PREFIX TEXT, FIRST TEXT, LAST TEXT, SUFFIX TEXT, MAIDEN TEXT, MARITAL TEXT, RACE TEXT,
            ETHNICITY TEXT, GENDER TEXT, BIRTHPLACE TEXT, ADDRESS TEXT, CITY TEXT, STATE TEXT, COUNTY TEXT, ZIP TEXT,
            LAT REAL, LON REAL, HEALTHCARE_EXPENSES REAL, INCOME INTEGER, emergency_contact_name TEXT,
            emergency_contact_phone TEXT, legacy_ref TEXT);
        CREATE TABLE providers (Id TEXT PRIMARY KEY, ORGANIZATION TEXT REFERENCES organizations (Id), NAME TEXT,
            GENDER TEXT, SPECIALITY TEXT, ADDRESS TEXT, CITY TEXT, STATE TEXT, ZIP TEXT, ENCOUNTERS INTEGER);
        CREATE TABLE payer_transitions (PATIENT TEXT REFERENCES patients (Id), MEMBERID TEXT, START_YEAR INTEGER,
            END_YEAR INTEGER, PAYER TEXT REFERENCES payers (Id), PLAN_OWNERSHIP TEXT, OWNER_NAME TEXT,
            subscriber_id TEXT, policy_holder_name TEXT);
        CREATE TABLE encounters (Id TEXT PRIMARY KEY, START TEXT, PATIENT TEXT REFERENCES patients (Id),
            PROVIDER TEXT REFERENCES providers (Id), ENCOUNTERCLASS TEXT, REASONDESCRIPTION TEXT,
            BASE_ENCOUNTER_COST REAL);
        CREATE TABLE devices (START TEXT, PATIENT TEXT REFERENCES patients (Id), CODE INTEGER, DESCRIPTION TEXT,
            UDI TEXT, SERIAL_NUMBER TEXT);
        CREATE TABLE conditions (START TEXT, PATIENT TEXT REFERENCES patients (Id), CODE INTEGER, DESCRIPTION TEXT);
        CREATE TABLE clinicians (clinician_id INTEGER PRIMARY KEY, first TEXT, last TEXT, npi TEXT, email TEXT,
            department TEXT, mrn_prefix TEXT);
        CREATE TABLE drivers_license (id INTEGER PRIMARY KEY, age INTEGER, height INTEGER, eye_color TEXT,
            hair_color TEXT, gender TEXT, plate_number TEXT, car_make TEXT, car_model TEXT);
        CREATE TABLE person (id INTEGER PRIMARY KEY, name TEXT, license_id INTEGER REFERENCES drivers_license (id),
            address_number INTEGER, address_street_name TEXT, ssn INTEGER);
        CREATE TABLE facebook_event_checkin (person_id INTEGER REFERENCES person (id), event_id INTEGER,
            event_name TEXT, date INTEGER);
        CREATE TABLE get_fit_now_member (id TEXT PRIMARY KEY, person_id INTEGER REFERENCES person (id), name TEXT,
            membership_status TEXT);
        CREATE TABLE genre (GenreId INTEGER PRIMARY KEY, Name TEXT);
        CREATE TABLE artist (ArtistId INTEGER PRIMARY KEY, Name TEXT);
        CREATE TABLE album (AlbumId INTEGER PRIMARY KEY, Title TEXT, ArtistId INTEGER REFERENCES artist (ArtistId));
        CREATE TABLE track (TrackId INTEGER PRIMARY KEY, Name TEXT, AlbumId INTEGER REFERENCES album (AlbumId),
            GenreId INTEGER REFERENCES genre (GenreId), genre_id INTEGER, Milliseconds INTEGER);
        CREATE TABLE customer (CustomerId INTEGER PRIMARY KEY, FirstName TEXT, LastName TEXT, Company TEXT,
            Address TEXT, City TEXT, State TEXT, Country TEXT, PostalCode TEXT, Phone TEXT, Email TEXT);
        CREATE TABLE employees (employee_id INTEGER PRIMARY KEY, cust_first_name TEXT, guarantor_first TEXT,
            guarantor_last TEXT, TitleOfCourtesy TEXT, Title TEXT, HomePhone TEXT, hire_date DATE,
            employee_number TEXT, badge TEXT, locker_code TEXT, shift_code TEXT);
        CREATE TABLE vehicles (vehicle_id INTEGER PRIMARY KEY, vin TEXT, license_plate TEXT, colour TEXT,
            owner_name TEXT);
        CREATE TABLE phones_inventory (item_id INTEGER PRIMARY KEY, imei TEXT, mac_address TEXT, model TEXT);
        CREATE TABLE clients (client_id INTEGER PRIMARY KEY, prenom TEXT, nom TEXT, genre TEXT, telephone TEXT,
            ville TEXT);
        CREATE TABLE films (film_id INTEGER PRIMARY KEY, titre TEXT, genre TEXT);
    """)
    conn.executemany("INSERT INTO organizations VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [
        (oid, f"{fake.last_name().upper()} HEALTH {rng.choice(['SYSTEM', 'CENTER', 'CLINIC'])}", street(),
         rng.choice(cities), rng.choice(states), fake.zipcode(), fake.numerify("(###) ###-####"),
         rng.uniform(1e5, 1e7)) for oid in org_ids])
    payer_names = ["Medicare", "Medicaid", "Aetna", "Cigna Health", "Humana", "Blue Cross Blue Shield",
                   "UnitedHealthcare", "Anthem", "Dual Eligible", "NO_INSURANCE"]
    conn.executemany("INSERT INTO payers VALUES (?, ?, ?, ?, ?, ?, ?)", [
        (pid, payer_names[i], street(), rng.choice(cities), rng.choice(["MA", "CT", "MN"]), fake.zipcode(),
         fake.numerify("1-800-###-####")) for i, pid in enumerate(payer_ids)])

    def digits_name(name: str) -> str:
        return f"{name}{rng.randint(1, 999)}"

    firsts = [rng.choice(["Margorie", "José Eduardo", "MARÍA", "Zoë", "Chloé"]) if rng.random() < 0.1
              else (invented_name(rng) if rng.random() < 0.5 else fake.first_name()) for _ in range(rows)]
    lasts = [invented_name(rng) if rng.random() < 0.5 else fake.last_name() for _ in range(rows)]
    patients = []
    for i, pid in enumerate(ids):
        female = rng.random() < 0.5
        patients.append((
            pid, fake.date_of_birth(minimum_age=0, maximum_age=99).isoformat(),
            fake.date_between("-10y", "today").isoformat() if rng.random() < 0.15 else None,
            _ssn(rng), f"S999{rng.randint(10000, 99999)}" if rng.random() < 0.8 else None,
            f"X{rng.randint(10**7, 10**8 - 1)}X" if rng.random() < 0.7 else None,
            rng.choice(["Mrs.", "Ms."] if female else ["Mr."]), digits_name(firsts[i]), digits_name(lasts[i]),
            rng.choice(["PhD", "JD", "MD"]) if rng.random() < 0.05 else None,
            digits_name(invented_name(rng)) if female and rng.random() < 0.6 else None, rng.choice(["M", "S"]),
            rng.choice(["white", "black", "asian", "native", "other"]), rng.choice(["hispanic", "nonhispanic"]),
            "F" if female else "M", f"{rng.choice(cities)} {rng.choice(states)} US", street(),
            rng.choice(cities), rng.choice(states), f"{fake.last_name()} County", fake.zipcode(),
            rng.uniform(41, 43), rng.uniform(-73, -70), rng.uniform(1e3, 1e6), rng.randint(10_000, 200_000),
            f"{fake.first_name()} {fake.last_name()}", fake.numerify("(###) 555-####"), _ssn(rng)))
    conn.executemany(f"INSERT INTO patients VALUES ({', '.join('?' * 28)})", patients)
    specialities = ["GENERAL PRACTICE", "INTERNAL MEDICINE", "PEDIATRICS", "CARDIOLOGY", "DERMATOLOGY"]
    conn.executemany("INSERT INTO providers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
        (pid, rng.choice(org_ids), f"{invented_name(rng)} {invented_name(rng)}", rng.choice(["M", "F"]),
         rng.choice(specialities), street(), rng.choice(cities), rng.choice(states), fake.zipcode(),
         rng.randint(0, 5000)) for pid in provider_ids])
    conn.executemany("INSERT INTO payer_transitions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", [
        (rng.choice(ids), f"W{rng.randint(10**8, 10**9 - 1)}", 2000 + rng.randint(0, 10), 2011 + rng.randint(0, 10),
         rng.choice(payer_ids), rng.choice(["Self", "Spouse", "Guardian"]),
         f"{digits_name(invented_name(rng))} {digits_name(invented_name(rng))}",
         "".join(rng.choice(string.ascii_uppercase) for _ in range(3)) + str(rng.randint(10**8, 10**9 - 1)),
         fake.name()) for _ in range(rows)])
    reasons = ["Acute bronchitis (disorder)", "Hypertension", "Viral sinusitis (disorder)", "Normal pregnancy",
               "Chronic pain", None]
    conn.executemany("INSERT INTO encounters VALUES (?, ?, ?, ?, ?, ?, ?)", [
        (eid, fake.date_time_between("-5y").isoformat(), rng.choice(ids), rng.choice(provider_ids),
         rng.choice(["ambulatory", "wellness", "outpatient", "inpatient", "emergency"]), rng.choice(reasons),
         round(rng.uniform(50, 500), 2)) for eid in encounter_ids])
    conn.executemany("INSERT INTO devices VALUES (?, ?, ?, ?, ?, ?)", [
        (fake.date_time_between("-5y").isoformat(), rng.choice(ids), rng.choice([72506001, 36965003, 706180003]),
         rng.choice(["Implantable defibrillator", "Blood glucose meter", "Hearing aid"]),
         f"(01){rng.randint(10**13, 10**14 - 1)}(11){rng.randint(10, 29)}0{rng.randint(1, 9)}15(17)"
         f"{rng.randint(30, 49)}0{rng.randint(1, 9)}15(10){rng.randint(10000, 99999)}(21){rng.randint(10**4, 10**5)}",
         f"SN-{rng.randint(10**6, 10**7):X}{rng.choice('ABCDEF')}") for _ in range(rows)])
    conn.executemany("INSERT INTO conditions VALUES (?, ?, ?, ?)", [
        (fake.date_between("-5y").isoformat(), rng.choice(ids), rng.choice([444814009, 10509002, 195662009]),
         rng.choice(["Viral sinusitis (disorder)", "Acute bronchitis (disorder)", "Diabetes", "Anemia (disorder)"]))
        for _ in range(rows)])
    departments = ["Cardiology", "Oncology", "Emergency", "Radiology", "Surgery"]
    conn.executemany("INSERT INTO clinicians VALUES (?, ?, ?, ?, ?, ?, ?)", [
        (i, digits_name(invented_name(rng)), digits_name(invented_name(rng)), str(rng.randint(10**9, 2 * 10**9)),
         f"clinician{i}@hospital.example", rng.choice(departments), rng.choice(["MRN", "PAT", "HOS"]))
        for i in range(1, rows // 2 + 1)])
    eye = ["brown", "blue", "green", "hazel", "amber", "black", "grey"]
    hair = ["black", "brown", "blonde", "red", "grey", "white"]
    makes = [("Toyota", "Corolla"), ("Ford", "Focus"), ("Chevrolet", "Malibu"), ("Honda", "Civic"),
             ("Tesla", "Model 3")]
    licences = []
    for i in range(1, rows + 1):
        make, model = rng.choice(makes)
        plate = "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(6))
        licences.append((i, rng.randint(16, 90), rng.randint(50, 80), rng.choice(eye), rng.choice(hair),
                         rng.choice(["male", "female"]), plate if any(c.isdigit() for c in plate) else plate[:5] + "7",
                         make, model))
    conn.executemany("INSERT INTO drivers_license VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", licences)
    conn.executemany("INSERT INTO person VALUES (?, ?, ?, ?, ?, ?)", [
        (i, fake.name(), rng.randint(1, rows), rng.randint(1, 9999),
         f"{fake.street_name()}", rng.randint(100_000_000, 999_999_999)) for i in range(1, rows + 1)])
    events = ["The Funky Grooves Tour", "SQL Symphony Concert", "Brown Bag Lunch", "Black Friday Sale",
              "White Party", "Green Festival", "Rock the Vote", "Smith & Wesson Expo"]
    conn.executemany("INSERT INTO facebook_event_checkin VALUES (?, ?, ?, ?)", [
        (rng.randint(1, rows), rng.randint(1, 8000), rng.choice(events), 20180100 + rng.randint(1, 28))
        for _ in range(rows)])
    conn.executemany("INSERT INTO get_fit_now_member VALUES (?, ?, ?, ?)", [
        (f"{i:02d}{rng.choice(string.ascii_uppercase)}{rng.randint(0, 9)}{rng.choice(string.ascii_uppercase)}", i,
         fake.name(), rng.choice(["gold", "silver", "regular"])) for i in range(1, min(rows, 99) + 1)])
    genres = ["Rock", "Jazz", "Metal", "Alternative & Punk", "Rock And Roll", "Blues", "Latin", "Reggae", "Pop",
              "Soundtrack", "Bossa Nova", "Easy Listening", "Heavy Metal", "R&B/Soul", "Electronica/Dance",
              "World", "Hip Hop/Rap", "Science Fiction", "TV Shows", "Sci Fi & Fantasy", "Drama", "Comedy",
              "Alternative", "Classical", "Opera"]
    conn.executemany("INSERT INTO genre VALUES (?, ?)", list(enumerate(genres, 1)))
    artists = ["AC/DC", "Accept", "Aerosmith", "Alanis Morissette", "Alice In Chains", "Antônio Carlos Jobim",
               "Apocalyptica", "Audioslave", "BackBeat", "Billy Cobham", "Black Label Society", "Black Sabbath",
               "Body Count", "Bruce Dickinson", "Buddy Guy", "Caetano Veloso", "Chico Buarque", "Chico Science",
               "Cidade Negra", "Cláudio Zoli", "Various Artists", "Led Zeppelin", "Frank Zappa", "Marvin Gaye"]
    conn.executemany("INSERT INTO artist VALUES (?, ?)", list(enumerate(artists, 1)))
    words = ["Big", "Ones", "Jagged", "Little", "Pill", "Facelift", "Warner", "Let", "There", "Be", "Rock", "Balls",
             "To", "The", "Wall", "Restless", "Wicked", "Plays", "Metallica", "By", "Four", "Cellos", "Out", "Of",
             "Exile", "Green", "White", "Black", "Brown", "Sugar", "Blue", "Moon", "Kind", "Love"]
    albums = [(i, " ".join(rng.choice(words) for _ in range(rng.randint(1, 4))), rng.randint(1, len(artists)))
              for i in range(1, max(30, rows // 3) + 1)]
    conn.executemany("INSERT INTO album VALUES (?, ?, ?)", albums)
    conn.executemany("INSERT INTO track VALUES (?, ?, ?, ?, ?, ?)", [
        (i, " ".join(rng.choice(words) for _ in range(rng.randint(1, 5))), rng.randint(1, len(albums)),
         rng.randint(1, len(genres)), rng.randint(1, len(genres)), rng.randint(60_000, 600_000))
        for i in range(1, rows + 1)])
    state_codes = ["SP", "CA", "NY", "RJ", "QC", "ON", "AL", "WA", "MA", "DF", "AZ", "FL", "IL", "NV", "TX", "UT",
                   "ED", "AB", "BC", "MB"]
    conn.executemany("INSERT INTO customer VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
        (i, fake.first_name(), fake.last_name(), fake.company() if rng.random() < 0.3 else None, street(),
         rng.choice(cities), rng.choice(state_codes), rng.choice(["USA", "Brazil", "Canada", "France"]),
         fake.postcode(), fake.numerify("+1 (###) ###-####"), fake.email()) for i in range(1, rows + 1)])
    conn.executemany("INSERT INTO employees VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
        (i, fake.first_name(), fake.first_name(), fake.last_name(), rng.choice(["Mr.", "Ms.", "Mrs.", "Dr."]),
         rng.choice(["Sales Representative", "Sales Manager", "Vice President, Sales", "Inside Sales Coordinator"]),
         fake.numerify("(###) 555-####"), fake.date_between("-20y").isoformat(),
         f"E{rng.randint(10**5, 10**6 - 1)}{rng.choice(string.ascii_uppercase)}",
         rng.choice(["red", "blue", "green"]), f"L-{i * 7919 % 100000:05d}-{rng.choice(string.ascii_uppercase)}",
         rng.choice(["A1", "B2", "C3"])) for i in range(1, rows + 1)])
    conn.executemany("INSERT INTO vehicles VALUES (?, ?, ?, ?, ?)", [
        (i, _vin(rng), f"{rng.choice(string.ascii_uppercase)}{rng.choice(string.ascii_uppercase)}-"
         f"{rng.randint(100, 999)}-{rng.choice(string.ascii_uppercase)}{rng.choice(string.ascii_uppercase)}",
         rng.choice(["red", "black", "white", "silver"]), fake.name()) for i in range(1, rows + 1)])
    conn.executemany("INSERT INTO phones_inventory VALUES (?, ?, ?, ?)", [
        (i, _luhn_complete(f"35{rng.randint(10**11, 10**12 - 1)}"),
         ":".join(f"{rng.randint(0, 255):02X}" for _ in range(6)), rng.choice(["Pixel 8", "iPhone 15", "Galaxy S24"]))
        for i in range(1, rows + 1)])
    fr = Faker("fr_FR")
    fr.seed_instance(seed)
    conn.executemany("INSERT INTO clients VALUES (?, ?, ?, ?, ?, ?)", [
        (i, fr.first_name(), fr.last_name(), rng.choice(["homme", "femme"]), fr.phone_number(), fr.city())
        for i in range(1, rows + 1)])
    conn.executemany("INSERT INTO films VALUES (?, ?, ?)", [
        (i, " ".join(rng.choice(words) for _ in range(rng.randint(1, 4))),
         rng.choice(["Drame", "Comédie", "Action", "Horreur", "Documentaire"])) for i in range(1, rows + 1)])
    conn.commit()
    conn.close()
    return dict(GROUND_TRUTH)


def copy_to(path: Path, url: str) -> None:
    """Copy the SQLite database at ``path`` into the (empty, existing) database at ``url``, keys included."""
    source = sa.create_engine(f"sqlite:///{path}", poolclass=sa.pool.NullPool)
    target = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        metadata = sa.MetaData()
        metadata.reflect(source)
        copied = sa.MetaData()
        for table in metadata.sorted_tables:
            columns = []
            for column in table.columns:
                kind: sa.types.TypeEngine[object] = column.type
                if isinstance(kind, sa.Text | sa.String):
                    kind = sa.String(255)  # MariaDB keys need a length; every value here is short
                elif isinstance(kind, sa.Float | sa.REAL):
                    kind = sa.Float()
                columns.append(sa.Column(column.name, kind, primary_key=column.primary_key))
            foreign = [sa.ForeignKeyConstraint([c.parent.name for c in fk.elements],
                                               [f"{fk.referred_table.name}.{c.column.name}" for c in fk.elements])
                       for fk in table.foreign_key_constraints]
            sa.Table(table.name, copied, *columns, *foreign)
        copied.create_all(target)
        with source.connect() as read, target.begin() as write:
            for table in metadata.sorted_tables:
                rows = [dict(r._mapping) for r in read.execute(sa.select(table))]
                if rows:
                    write.execute(copied.tables[table.name].insert(), rows)
    finally:
        source.dispose()
        target.dispose()
