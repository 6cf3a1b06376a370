"""Health records in the style of Synthea's CSV export: patients, payers, providers, encounters, devices.

What it reproduces: names with digits glued on (``Margorie48 Cormier289``) in columns called
``first``, ``last``, ``maiden`` and ``owner_name``; clinicians' full names in no dictionary
(``Christoper Peteuil``) in a column called ``name``; SSNs in the 999 test area
(``999-33-2827``) that a phone detector takes for a number; driver's licences ``S99912345``
and passports ``X12345678X``; health-plan member ids; device UDIs and serial numbers;
``birthplace`` as text; ``race``/``ethnicity`` categorical; encounter notes that name the
patient, a phone number and an e-mail address.

Example:
    >>> specs = tables(seed=1)
    >>> [t.name for t in specs][:3]
    ['organizations', 'providers', 'payers']
    >>> patients = next(t for t in specs if t.name == "patients")
    >>> any(ch.isdigit() for ch in patients.rows["first"][0])
    True
"""

from __future__ import annotations

import random
import uuid
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from corpus_kit import (
    KEY,
    Col,
    D,
    N,
    Q,
    Rows,
    S,
    Table,
    digits,
    faker,
    invented_surname,
    letters,
    misspelt,
    pick,
    us_phone,
    with_digits,
)

STYLE = "health records (Synthea-like)"
TXT = sa.String(120)
ORG_ADDR = N("an organisation's address, not a person's", alt=("D",))
ORG_PLACE = N("an organisation's location", alt=("Q",))
ORG_PHONE = N("an organisation's switchboard", alt=("D",))
EVENT = Q("event_date", why="a date in a patient's care: HIPAA (C)")

STATES = ["Massachusetts", "Rhode Island", "New Hampshire", "Connecticut", "Vermont", "Maine"]
RACES = ["white", "black", "asian", "native", "hawaiian", "other"]
CONDITIONS = [("44054006", "Diabetes mellitus type 2 (disorder)"), ("38341003", "Hypertensive disorder (disorder)"),
              ("195662009", "Acute viral pharyngitis (disorder)"), ("10509002", "Acute bronchitis (disorder)"),
              ("162864005", "Body mass index 30+ - obesity (finding)"), ("40055000", "Chronic sinusitis (disorder)"),
              ("444814009", "Viral sinusitis (disorder)"), ("15777000", "Prediabetes (finding)"),
              ("271737000", "Anemia (disorder)"), ("59621000", "Essential hypertension (disorder)")]
MEDICATIONS = [("314076", "lisinopril 10 MG Oral Tablet"), ("860975", "24 HR Metformin hydrochloride 500 MG"),
               ("197361", "Amlodipine 5 MG Oral Tablet"), ("308136", "amLODIPine 2.5 MG Oral Tablet"),
               ("313782", "Acetaminophen 325 MG Oral Tablet"), ("834061", "Penicillin V Potassium 250 MG")]
OBSERVATIONS = [("vital-signs", "8302-2", "Body Height", "cm", 150, 195), ("vital-signs", "29463-7", "Body Weight",
                 "kg", 45, 130), ("vital-signs", "39156-5", "Body mass index (BMI) [Ratio]", "kg/m2", 17, 40),
                ("vital-signs", "8867-4", "Heart rate", "/min", 50, 110), ("laboratory", "2339-0", "Glucose", "mg/dL",
                 60, 200), ("survey", "72166-2", "Tobacco smoking status", "{nominal}", 0, 0)]
SMOKING = ["Never smoker", "Former smoker", "Every day smoker"]
DEVICES = [("72506001", "Implantable defibrillator, device (physical object)"),
           ("706180003", "Respiratory humidifier (physical object)"),
           ("337414009", "Blood glucose meter (physical object)"), ("702172008", "Home continuous positive airway "
                                                                               "pressure unit (physical object)")]
ENCOUNTER_TYPES = [("185349003", "Encounter for check up (procedure)", "wellness"),
                   ("162673000", "General examination of patient (procedure)", "ambulatory"),
                   ("50849002", "Emergency room admission (procedure)", "emergency"),
                   ("185345009", "Encounter for symptom (procedure)", "outpatient"),
                   ("183452005", "Emergency hospital admission (procedure)", "inpatient")]
PAYERS = [("Medicare", "GOVERNMENT", "1-800-633-4227"), ("Medicaid", "GOVERNMENT", "1-877-267-2323"),
          ("Dual Eligible", "GOVERNMENT", "1-877-267-2323"), ("Blue Cross Blue Shield", "PRIVATE", "1-800-262-2583"),
          ("UnitedHealthcare", "PRIVATE", "1-888-545-5205"), ("Aetna", "PRIVATE", "1-800-872-3862"),
          ("Cigna Health", "PRIVATE", "1-800-997-1654"), ("Humana", "PRIVATE", "1-800-457-4708"),
          ("Anthem", "PRIVATE", "1-800-331-1476"), ("NO_INSURANCE", "NO_INSURANCE", None)]
SPECIALITIES = ["GENERAL PRACTICE", "INTERNAL MEDICINE", "FAMILY PRACTICE", "CARDIOLOGY", "PEDIATRICS"]
NOTE_TEMPLATES = [
    "{first} {last} seen for {reason}. Vitals stable. Callback number {phone}; results to {email}.",
    "Pt {first} {last} reports {reason} for 3 days. Advised fluids and rest. Reach at {phone}.",
    "Follow-up for {reason}. Patient {last}, {first} asked that letters go to {email} instead of the home address.",
    "Discussed {reason} with {first}. Daughter may call from {phone} on her behalf.",
    "Routine visit, no complaints. {first} {last} declined the flu vaccine. E-mail on file: {email}.",
]


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _udi(rng: random.Random, made: date) -> str:
    expires = made + timedelta(days=rng.randint(400, 2000))
    return (f"(01){digits(rng, 14)}(11){made:%y%m%d}(17){expires:%y%m%d}(10){digits(rng, 14)}"
            f"(21){digits(rng, 8)}")


def _member_id(rng: random.Random, payer: str) -> str:
    if payer in ("Medicare", "Dual Eligible"):  # Medicare beneficiary identifier: 1EG4TE5MK73
        a = "ACDEFGHJKMNPQRTUVWXY"
        return (f"{rng.randint(1, 9)}{rng.choice(a)}{rng.choice(a + '0123456789')}{rng.randint(0, 9)}"
                f"{rng.choice(a)}{rng.choice(a + '0123456789')}{rng.randint(0, 9)}{rng.choice(a)}{rng.choice(a)}"
                f"{rng.randint(0, 9)}{rng.randint(0, 9)}")
    if rng.random() < 0.5:
        return _uuid(rng)  # Synthea writes member ids as UUIDs
    return f"{letters(rng, 3)}{digits(rng, 9)}"


def tables(seed: int = 14, patients: int = 250) -> list[Table]:
    """The health-records database: its table specs with rows and labels."""
    fake = faker(seed)
    rng = random.Random(seed)
    today = date(2024, 6, 30)

    # organizations
    n_org = 20
    org_ids = [_uuid(rng) for _ in range(n_org)]
    org_states = pick(rng, STATES, n_org)
    organizations: Rows = {
        "id": org_ids,
        "name": [f"{fake.last_name().upper()} {rng.choice(['MEDICAL CENTER', 'HOSPITAL', 'HEALTH CLINIC'])}"
                 for _ in org_ids],
        "address": [fake.street_address() for _ in org_ids],
        "city": [fake.city() for _ in org_ids],
        "state": org_states,
        "zip": [f"0{rng.randint(1000, 2799)}" for _ in org_ids],
        "lat": [round(rng.uniform(41.2, 43.0), 6) for _ in org_ids],
        "lon": [round(rng.uniform(-73.4, -69.9), 6) for _ in org_ids],
        "phone": [fake.numerify("###-###-####") for _ in org_ids],
        "revenue": [round(rng.uniform(1e5, 1e7), 2) for _ in org_ids],
        "utilization": [rng.randint(10, 5000) for _ in org_ids],
    }
    # providers: clinicians' names, misspelt first names and invented surnames
    n_prov = 60
    prov_ids = [_uuid(rng) for _ in range(n_prov)]
    prov_gender = pick(rng, "MF", n_prov)
    providers: Rows = {
        "id": prov_ids,
        "organization": pick(rng, org_ids, n_prov),
        "name": [f"{misspelt(fake.first_name_male() if g == 'M' else fake.first_name_female(), rng)} "
                 f"{invented_surname(rng)}" for g in prov_gender],
        "gender": prov_gender,
        "speciality": pick(rng, SPECIALITIES, n_prov),
        "address": [fake.street_address() for _ in prov_ids],
        "city": [fake.city() for _ in prov_ids],
        "state": pick(rng, STATES, n_prov),
        "zip": [f"0{rng.randint(1000, 2799)}" for _ in prov_ids],
        "lat": [round(rng.uniform(41.2, 43.0), 6) for _ in prov_ids],
        "lon": [round(rng.uniform(-73.4, -69.9), 6) for _ in prov_ids],
        "encounters": [rng.randint(0, 900) for _ in prov_ids],
        "procedures": [rng.randint(0, 300) for _ in prov_ids],
    }
    # payers
    payer_ids = [_uuid(rng) for _ in PAYERS]
    payers: Rows = {
        "id": payer_ids,
        "name": [p[0] for p in PAYERS],
        "ownership": [p[1] for p in PAYERS],
        "address": [fake.street_address() if p[2] else None for p in PAYERS],
        "city": [fake.city() if p[2] else None for p in PAYERS],
        "state_headquartered": [rng.choice(["MD", "MN", "CT", "PA", "KY", "IN"]) if p[2] else None for p in PAYERS],
        "zip": [fake.zipcode() if p[2] else None for p in PAYERS],
        "phone": [p[2] for p in PAYERS],
        "amount_covered": [round(rng.uniform(1e5, 1e8), 2) for _ in PAYERS],
        "amount_uncovered": [round(rng.uniform(1e4, 1e7), 2) for _ in PAYERS],
        "revenue": [round(rng.uniform(1e5, 1e8), 2) for _ in PAYERS],
        "member_months": [rng.randint(100, 90000) for _ in PAYERS],
    }
    # patients
    pat_ids = [_uuid(rng) for _ in range(patients)]
    gender = pick(rng, "MF", patients)
    first_plain = [fake.first_name_male() if g == "M" else fake.first_name_female() for g in gender]
    last_plain = [fake.last_name() for _ in pat_ids]
    married = [g == "F" and rng.random() < 0.45 for g in gender]
    births = [today - timedelta(days=rng.randint(365, 95 * 365)) for _ in pat_ids]
    first = [with_digits(n, rng) for n in first_plain]
    last = [with_digits(n, rng) for n in last_plain]
    patient_rows: Rows = {
        "id": pat_ids,
        "birthdate": births,
        "deathdate": [b + timedelta(days=rng.randint(20 * 365, 30 * 365)) if rng.random() < 0.08
                      and b + timedelta(days=30 * 365) < today else None for b in births],
        "ssn": [f"999-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}" for _ in pat_ids],
        "drivers": [f"S999{digits(rng, 5)}" if rng.random() < 0.8 else None for _ in pat_ids],
        "passport": [f"X{digits(rng, 8)}X" if rng.random() < 0.7 else None for _ in pat_ids],
        "prefix": [("Mrs." if m else "Ms.") if g == "F" else "Mr." for g, m in zip(gender, married)],
        "first": first,
        "middle": [with_digits(fake.first_name(), rng) if rng.random() < 0.5 else None for _ in pat_ids],
        "last": last,
        "suffix": [rng.choice(["Jr.", "Sr.", "II", "PhD", "MD"]) if rng.random() < 0.06 else None for _ in pat_ids],
        "maiden": [with_digits(fake.last_name(), rng) if m else None for m in married],
        "marital": [("M" if m else rng.choice("SDW")) if rng.random() < 0.9 else None for m in married],
        "race": pick(rng, RACES, patients, weights=[70, 12, 8, 2, 1, 7]),
        "ethnicity": pick(rng, ["nonhispanic", "hispanic"], patients, weights=[85, 15]),
        "gender": gender,
        "birthplace": [f"{fake.city()}  {rng.choice(STATES)}  US" for _ in pat_ids],
        "address": [f"{fake.building_number()} {fake.street_name()}" + (f" Unit {rng.randint(1, 99)}"
                    if rng.random() < 0.3 else "") for _ in pat_ids],
        "city": [fake.city() for _ in pat_ids],
        "state": pick(rng, STATES, patients),
        "county": [f"{fake.last_name()} County" for _ in pat_ids],
        "zip": [f"0{rng.randint(1000, 2799)}" if rng.random() < 0.85 else None for _ in pat_ids],
        "lat": [round(rng.uniform(41.2, 43.0), 8) for _ in pat_ids],
        "lon": [round(rng.uniform(-73.4, -69.9), 8) for _ in pat_ids],
        "healthcare_expenses": [round(rng.uniform(500, 2e6), 2) for _ in pat_ids],
        "healthcare_coverage": [round(rng.uniform(0, 1e6), 2) for _ in pat_ids],
        "income": [rng.randint(9000, 250000) for _ in pat_ids],
    }
    # payer_transitions: member ids and the policy holder's name
    n_tr = 400
    tr_patient = pick(rng, range(patients), n_tr)
    tr_payer = pick(rng, range(len(PAYERS) - 1), n_tr)
    ownership = pick(rng, ["Self", "Spouse", "Guardian"], n_tr, weights=[70, 20, 10])
    holders = [f"{first[p]} {last[p]}" if o == "Self" else  # a spouse shares the surname, a guardian need not
               f"{with_digits(fake.first_name(), rng)} "
               f"{last[p] if o == 'Spouse' else with_digits(fake.last_name(), rng)}"
               for p, o in zip(tr_patient, ownership)]
    start_years = [rng.randint(1990, 2022) for _ in range(n_tr)]
    payer_transitions: Rows = {
        "patient": [pat_ids[p] for p in tr_patient],
        "memberid": [_member_id(rng, PAYERS[p][0]) for p in tr_payer],
        "start_year": start_years,
        "end_year": [y + rng.randint(0, 6) for y in start_years],
        "payer": [payer_ids[p] for p in tr_payer],
        "secondary_payer": [payer_ids[rng.randrange(len(PAYERS))] if rng.random() < 0.2 else None for _ in tr_payer],
        "plan_ownership": ownership,
        "owner_name": holders,
    }
    # encounters with free-text notes
    n_enc = 600
    enc_ids = [_uuid(rng) for _ in range(n_enc)]
    enc_patient = pick(rng, range(patients), n_enc)
    enc_start = [datetime(2015, 1, 1) + timedelta(minutes=rng.randint(0, 9 * 365 * 24 * 60)) for _ in enc_ids]
    enc_type = pick(rng, ENCOUNTER_TYPES, n_enc)
    reasons = [rng.choice(CONDITIONS) if rng.random() < 0.4 else None for _ in enc_ids]
    domains = ["example.com", "example.org", "mail.example.net", "inbox.example"]

    def note(p: int, reason: tuple[str, str] | None) -> str | None:
        if rng.random() < 0.1:
            return None
        email = f"{first_plain[p].lower()}.{last_plain[p].lower()}{rng.randint(1, 99)}@{rng.choice(domains)}"
        what = reason[1].split(" (")[0].lower() if reason else "a routine check"
        return rng.choice(NOTE_TEMPLATES).format(first=first[p], last=last[p], phone=us_phone(rng), email=email,
                                                 reason=what)

    encounters: Rows = {
        "id": enc_ids,
        "start": enc_start,
        "stop": [s + timedelta(minutes=rng.randint(15, 600)) for s in enc_start],
        "patient": [pat_ids[p] for p in enc_patient],
        "organization": pick(rng, org_ids, n_enc),
        "provider": pick(rng, prov_ids, n_enc),
        "payer": pick(rng, payer_ids, n_enc),
        "encounterclass": [t[2] for t in enc_type],
        "code": [t[0] for t in enc_type],
        "description": [t[1] for t in enc_type],
        "base_encounter_cost": [round(rng.uniform(50, 150), 2) for _ in enc_ids],
        "total_claim_cost": [round(rng.uniform(50, 3000), 2) for _ in enc_ids],
        "payer_coverage": [round(rng.uniform(0, 2000), 2) for _ in enc_ids],
        "reasoncode": [r[0] if r else None for r in reasons],
        "reasondescription": [r[1] if r else None for r in reasons],
        "notes": [note(p, r) for p, r in zip(enc_patient, reasons)],
    }

    def clinical(n: int, codes: list[tuple[str, str]]) -> Rows:
        encs = pick(rng, range(n_enc), n)
        picked = pick(rng, codes, n)
        starts = [enc_start[e].date() for e in encs]
        return {"start": starts, "stop": [s + timedelta(days=rng.randint(5, 400)) if rng.random() < 0.5 else None
                                          for s in starts],
                "patient": [pat_ids[enc_patient[e]] for e in encs], "encounter": [enc_ids[e] for e in encs],
                "code": [c[0] for c in picked], "description": [c[1] for c in picked]}

    conditions = clinical(300, CONDITIONS)
    medications = clinical(300, MEDICATIONS)
    medications["base_cost"] = [round(rng.uniform(1, 300), 2) for _ in medications["code"]]
    medications["dispenses"] = [rng.randint(1, 24) for _ in medications["code"]]
    # observations
    n_obs = 800
    obs_enc = pick(rng, range(n_enc), n_obs)
    obs_kind = pick(rng, OBSERVATIONS, n_obs)
    observations: Rows = {
        "date": [enc_start[e] for e in obs_enc],
        "patient": [pat_ids[enc_patient[e]] for e in obs_enc],
        "encounter": [enc_ids[e] for e in obs_enc],
        "category": [k[0] for k in obs_kind],
        "code": [k[1] for k in obs_kind],
        "description": [k[2] for k in obs_kind],
        "value": [rng.choice(SMOKING) if k[4] == 0 else f"{rng.uniform(k[4], k[5]):.1f}" for k in obs_kind],
        "units": [k[3] for k in obs_kind],
        "type": ["text" if k[4] == 0 else "numeric" for k in obs_kind],
    }
    # devices: UDI and serial numbers
    devices = clinical(150, DEVICES)
    devices["udi"] = [_udi(rng, s - timedelta(days=rng.randint(30, 700))) for s in devices["start"]]
    devices["serial_number"] = [rng.choice([f"SN{digits(rng, 10)}", f"{letters(rng, 2)}{digits(rng, 7)}-"
                                            f"{letters(rng, 1)}", digits(rng, 12)]) for _ in devices["start"]]

    return [
        Table("organizations", [
            Col("id", sa.String(36), KEY, pk=True), Col("name", TXT, N("a hospital's name")),
            Col("address", TXT, ORG_ADDR), Col("city", TXT, ORG_PLACE), Col("state", TXT, N("a state")),
            Col("zip", sa.String(10), ORG_PLACE), Col("lat", sa.Float, ORG_PLACE), Col("lon", sa.Float, ORG_PLACE),
            Col("phone", sa.String(20), ORG_PHONE), Col("revenue", sa.Numeric(14, 2), N("an organisation's revenue")),
            Col("utilization", sa.Integer, N("a count")),
        ], organizations),
        Table("providers", [
            Col("id", sa.String(36), KEY, pk=True), Col("organization", sa.String(36), KEY, fk="organizations.id"),
            Col("name", TXT, D("full_name", why="a clinician's name, spelt oddly, in no dictionary")),
            Col("gender", sa.String(1), Q("gender")), Col("speciality", TXT, N("a medical speciality")),
            Col("address", TXT, N("the practice's address", alt=("D",))), Col("city", TXT, ORG_PLACE),
            Col("state", TXT, N("a state")), Col("zip", sa.String(10), ORG_PLACE), Col("lat", sa.Float, ORG_PLACE),
            Col("lon", sa.Float, ORG_PLACE), Col("encounters", sa.Integer, N("a count")),
            Col("procedures", sa.Integer, N("a count")),
        ], providers),
        Table("payers", [
            Col("id", sa.String(36), KEY, pk=True), Col("name", TXT, N("an insurer's name")),
            Col("ownership", TXT, N("a category")), Col("address", TXT, ORG_ADDR), Col("city", TXT, ORG_PLACE),
            Col("state_headquartered", sa.String(2), N("a state")), Col("zip", sa.String(10), ORG_PLACE),
            Col("phone", sa.String(20), ORG_PHONE), Col("amount_covered", sa.Numeric(14, 2), N("an insurer's total")),
            Col("amount_uncovered", sa.Numeric(14, 2), N("an insurer's total")),
            Col("revenue", sa.Numeric(14, 2), N("an insurer's revenue")),
            Col("member_months", sa.Integer, N("a count")),
        ], payers),
        Table("patients", [
            Col("id", sa.String(36), KEY, pk=True),
            Col("birthdate", sa.Date, Q("date_of_birth")),
            Col("deathdate", sa.Date, Q("event_date", why="date of death: HIPAA (C)")),
            Col("ssn", sa.String(11), D("national_id", why="SSN in the 999 test area, shaped like a phone number")),
            Col("drivers", sa.String(12), D("drivers_licence")),
            Col("passport", sa.String(12), D("passport")),
            Col("prefix", sa.String(8), Q("gender", alt=("N",), why="Mr./Mrs./Ms. states gender and marital status")),
            Col("first", TXT, D("first_name", why="given name with digits")),
            Col("middle", TXT, D("first_name", why="middle name with digits")),
            Col("last", TXT, D("last_name", why="family name with digits")),
            Col("suffix", sa.String(8), N("Jr./PhD: a name suffix, low cardinality", alt=("Q",))),
            Col("maiden", TXT, D("last_name", why="maiden name with digits")),
            Col("marital", sa.String(1), Q(why="marital status (no kind in the taxonomy)", alt=("N",))),
            Col("race", sa.String(20), S("ethnicity")),
            Col("ethnicity", sa.String(20), S("ethnicity")),
            Col("gender", sa.String(1), Q("gender")),
            Col("birthplace", TXT, Q("city", why="a place as text: a date strategy cannot apply")),
            Col("address", TXT, D("street_address")),
            Col("city", TXT, Q("city")),
            Col("state", TXT, N("a state: HIPAA Safe Harbor keeps states")),
            Col("county", TXT, Q("city", "postcode", why="a county: smaller than a state, HIPAA (B)")),
            Col("zip", sa.String(10), Q("postcode")),
            Col("lat", sa.Float, Q("geo_coordinates")),
            Col("lon", sa.Float, Q("geo_coordinates")),
            Col("healthcare_expenses", sa.Numeric(14, 2), S("financial")),
            Col("healthcare_coverage", sa.Numeric(14, 2), S("financial")),
            Col("income", sa.Integer, S("financial")),
        ], patient_rows),
        Table("payer_transitions", [
            Col("patient", sa.String(36), KEY, fk="patients.id"),
            Col("memberid", sa.String(40), D("health_plan_id", why="member id: UUID, MBI or letters+digits")),
            Col("start_year", sa.Integer, N("a year: HIPAA Safe Harbor keeps years", alt=("Q",))),
            Col("end_year", sa.Integer, N("a year: HIPAA Safe Harbor keeps years", alt=("Q",))),
            Col("payer", sa.String(36), KEY, fk="payers.id"),
            Col("secondary_payer", sa.String(36), KEY, fk="payers.id"),
            Col("plan_ownership", sa.String(10), N("Self/Spouse/Guardian: a category")),
            Col("owner_name", TXT, D("full_name", why="the policy holder's name, with digits")),
        ], payer_transitions),
        Table("encounters", [
            Col("id", sa.String(36), KEY, pk=True), Col("start", sa.DateTime, EVENT), Col("stop", sa.DateTime, EVENT),
            Col("patient", sa.String(36), KEY, fk="patients.id"),
            Col("organization", sa.String(36), KEY, fk="organizations.id"),
            Col("provider", sa.String(36), KEY, fk="providers.id"), Col("payer", sa.String(36), KEY, fk="payers.id"),
            Col("encounterclass", sa.String(20), N("a category")),
            Col("code", sa.String(20), N("the code of an encounter type")),
            Col("description", TXT, N("an encounter type")),
            Col("base_encounter_cost", sa.Numeric(10, 2), N("a tariff")),
            Col("total_claim_cost", sa.Numeric(10, 2), N("the cost of a claim", alt=("S",))),
            Col("payer_coverage", sa.Numeric(10, 2), N("the part an insurer paid", alt=("S",))),
            Col("reasoncode", sa.String(20), S("health_condition")),
            Col("reasondescription", TXT, S("health_condition")),
            Col("notes", sa.Text, D("free_text", why="names the patient, a phone and an e-mail")),
        ], encounters),
        Table("conditions", [
            Col("start", sa.Date, EVENT), Col("stop", sa.Date, EVENT),
            Col("patient", sa.String(36), KEY, fk="patients.id"),
            Col("encounter", sa.String(36), KEY, fk="encounters.id"),
            Col("code", sa.String(20), S("health_condition")), Col("description", TXT, S("health_condition")),
        ], conditions),
        Table("medications", [
            Col("start", sa.Date, EVENT), Col("stop", sa.Date, EVENT),
            Col("patient", sa.String(36), KEY, fk="patients.id"),
            Col("encounter", sa.String(36), KEY, fk="encounters.id"),
            Col("code", sa.String(20), S("medication")), Col("description", TXT, S("medication")),
            Col("base_cost", sa.Numeric(10, 2), N("a price")), Col("dispenses", sa.Integer, N("a count", alt=("S",))),
        ], medications),
        Table("observations", [
            Col("date", sa.DateTime, EVENT), Col("patient", sa.String(36), KEY, fk="patients.id"),
            Col("encounter", sa.String(36), KEY, fk="encounters.id"),
            Col("category", sa.String(20), N("a category")), Col("code", sa.String(20), N("the code of a measurement")),
            Col("description", TXT, N("what was measured")),
            Col("value", sa.String(40), S("health_condition", why="a patient's measurement or smoking status")),
            Col("units", sa.String(20), N("a unit")), Col("type", sa.String(10), N("a category")),
        ], observations),
        Table("devices", [
            Col("start", sa.Date, EVENT), Col("stop", sa.Date, EVENT),
            Col("patient", sa.String(36), KEY, fk="patients.id"),
            Col("encounter", sa.String(36), KEY, fk="encounters.id"),
            Col("code", sa.String(20), S("health_condition", alt=("N",), why="an implanted device tells a condition")),
            Col("description", TXT, S("health_condition", alt=("N",), why="an implanted device tells a condition")),
            Col("udi", sa.String(80), D("device_id", why="GS1 unique device identifier with serial (21)")),
            Col("serial_number", sa.String(20), D("device_id")),
        ], devices),
    ]
