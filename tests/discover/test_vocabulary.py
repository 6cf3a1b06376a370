"""The column-name vocabulary: tokens, role prefixes, locales, types, things and table roles."""

from __future__ import annotations

import pytest

from datastage.identify.kinds import KINDS
from datastage.identify.vocabulary import ENTRIES, read_name, table_role, table_words, tokens


@pytest.mark.parametrize(("name", "expected"), [
    ("first_name", ("first", "name")), ("FirstName", ("first", "name")), ("FIRSTNAME", ("first", "name")),
    ("DATEOFBIRTH", ("date", "of", "birth")), ("OWNER_NAME", ("owner", "name")), ("address1", ("address",)),
    ("SSNNumber", ("ssn", "number")), ("Prénom", ("prenom",)), ("Straße", ("strasse",)),
    ("PLAN_OWNERSHIP", ("plan", "ownership")), ("email-Address", ("email", "address")),
])
def test_tokens(name: str, expected: tuple[str, ...]) -> None:
    assert tokens(name) == expected


def _kinds(name: str, category: str = "text", table: str = "") -> list[str]:
    return read_name(name, category, table_words(table) if table else frozenset()).kinds()


@pytest.mark.parametrize(("name", "kind"), [
    # role prefixes and suffixes are stripped: whose name or address it is does not change what it is
    ("billing_first_name", "first_name"), ("ship_email", "email"), ("ShipAddress", "street_address"),
    ("emergency_contact_phone", "phone"), ("emergency_contact_last", "last_name"),
    ("guarantor_first", "first_name"), ("policy_holder_name", "full_name"), ("subscriber_id", "health_plan_id"),
    ("mother_maiden_name", "last_name"), ("mothers_maiden_name", "last_name"), ("spouse_dob", "date_of_birth"),
    ("father_last_name", "last_name"), ("OWNER_NAME", "full_name"), ("cust_first_name", "first_name"),
    ("nom_client", "full_name"), ("adresse_livraison", "street_address"),
    # kinds without a detector before
    ("DRIVERS", "drivers_licence"), ("driver_license", "drivers_licence"), ("dl_number", "drivers_licence"),
    ("PASSPORT", "passport"), ("passport_no", "passport"), ("member_id", "health_plan_id"),
    ("medicaid_id", "health_plan_id"), ("policy_number", "health_plan_id"), ("beneficiary_id", "health_plan_id"),
    ("mrn", "medical_record_number"), ("UDI", "device_id"), ("serial_number", "device_id"),
    ("device_serial", "device_id"), ("imei", "device_id"), ("mac_address", "device_id"), ("vin", "vehicle_id"),
    ("license_plate", "vehicle_id"), ("plate_number", "vehicle_id"), ("tax_id", "tax_id"),
    ("account_number", "account_number"), ("homepage", "url"), ("profile_url", "url"), ("licence", "licence_number"),
    ("npi", "licence_number"), ("DEATHDATE", "event_date"), ("admission_date", "event_date"),
    ("discharge_date", "event_date"), ("RACE", "ethnicity"), ("ethnicity", "ethnicity"), ("religion", "religion"),
    ("diagnosis", "health_condition"), ("medication", "medication"), ("salary", "financial"),
    ("TitleOfCourtesy", "name_affix"), ("employee_number", "other_identifier"), ("MAIDEN", "last_name"),
    # other locales
    ("vorname", "first_name"), ("nachname", "last_name"), ("prénom", "first_name"), ("apellido", "last_name"),
    ("cognome", "last_name"), ("sobrenome", "last_name"), ("achternaam", "last_name"), ("efternamn", "last_name"),
    ("etternavn", "last_name"), ("sukunimi", "last_name"), ("nazwisko", "last_name"), ("telefono", "phone"),
    ("telefoon", "phone"), ("courriel", "email"), ("codice_fiscale", "tax_id"), ("personnummer", "national_id"),
    ("fodselsnummer", "national_id"), ("pesel", "national_id"), ("bsn", "national_id"),
    ("steuernummer", "tax_id"), ("führerschein", "drivers_licence"), ("permis_de_conduire", "drivers_licence"),
    ("reisepass", "passport"), ("kenteken", "vehicle_id"), ("Postleitzahl", "postcode"), ("código_postal", "postcode"),
    ("geboortedatum", "date_of_birth"), ("data_nascita", "date_of_birth"), ("fecha_nacimiento", "date_of_birth"),
    ("Geburtsort", "city"), ("lugar_nacimiento", "city"), ("wohnort", "city"), ("miasto", "city"),
])
def test_names_say_their_kind(name: str, kind: str) -> None:
    category = "date" if kind in ("date_of_birth", "event_date") else "text"
    assert kind in _kinds(name, category), (name, _kinds(name, category))


def test_birthplace_is_a_place_never_a_date_of_birth() -> None:
    for name in ("birthplace", "BIRTHPLACE", "birth_place", "place_of_birth", "birth_city", "Geburtsort"):
        assert _kinds(name) == ["city"], name
    assert _kinds("birth_date", "date") == ["date_of_birth"]
    assert _kinds("birth_name") == ["last_name"]  # a name at birth: a family name


def test_kinds_are_type_aware() -> None:
    assert _kinds("birth_date", "integer") == []  # a date kind only on dates (or text that holds dates)
    assert _kinds("birth_date", "text") == ["date_of_birth"]
    assert _kinds("address_id", "integer") == []  # a reference to an address row, not an address
    assert _kinds("first_name", "integer") == []
    assert _kinds("ssn", "integer") == ["national_id"]  # SSNs stored as numbers
    assert _kinds("age", "integer") == ["age"] and _kinds("LAT", "float") == ["geo_coordinates"]


def test_metadata_about_a_value_is_not_the_value() -> None:
    for name in ("email_verified", "email_type", "phone_prefix", "address_type", "name_length", "phone_country",
                 "email_opt_in", "email_bounced_at"):
        assert _kinds(name, "text") == [], name


def test_things_and_regions_are_never_person_names() -> None:
    for name in ("product_name", "company_name", "event_name", "genre_name", "nom_produit", "CompanyName"):
        reading = read_name(name, "text")
        assert reading.thing and reading.kinds() == [], name
    for name in ("state", "BillingState", "country", "province"):
        assert read_name(name, "text").thing, name
    assert read_name("genre_id", "integer").kinds() == []  # a genre's key, not a gender
    assert read_name("genre", "text").kinds() == ["gender"]  # French for gender: the values decide
    assert read_name("genre", "text").strength("gender") == "weak"


def test_generic_names_are_weak_and_person_roles_make_them_strong() -> None:
    assert read_name("name", "text").strength("full_name") == "weak"
    assert read_name("first", "text").strength("first_name") == "weak"
    assert read_name("owner_name", "text").strength("full_name") == "strong"
    assert read_name("guarantor_last", "text").strength("last_name") == "strong"
    assert read_name("patient", "text").strength("full_name") == "weak"  # values decide: a name or a key
    assert read_name("PREFIX", "text").strength("name_affix") == "weak"  # a name part only in a person table


@pytest.mark.parametrize(("table", "role"), [
    ("patients", "person"), ("PatientRecords", "person"), ("drivers_license", "person"), ("Customer", "person"),
    ("get_fit_now_member", "person"), ("employees", "person"), ("payers", "organisation"),
    ("organizations", "organisation"), ("Suppliers", "organisation"), ("genre", "thing"), ("albums", "thing"),
    ("payer_transitions", None), ("encounters", None), ("orders", None),
])
def test_table_roles(table: str, role: str | None) -> None:
    assert table_role(table) == role


def test_every_entry_names_a_kind_of_the_taxonomy() -> None:
    assert {e.kind for e in ENTRIES} <= set(KINDS)
    assert all(e.phrases for e in ENTRIES)
