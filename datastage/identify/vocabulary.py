"""Column-name vocabulary: which kind of personal data a column's *name* says it holds.

A name is split into tokens (``snake_case``, ``camelCase``, ``UPPERCASE`` run-ons such as
``BIRTHDATE`` or ``MEMBERID``), folded (lower case, accents off), and role words are
stripped from its ends (``billing_``, ``ship_``, ``emergency_contact_``, ``guarantor_``,
``mother_``, ``_client``...). The tokens are then matched against phrases in the words of
every supported locale (en, de, fr, es, it, nl, pt, sv, da, no, fi, pl, cs). The longest
phrase wins, so ``birthplace`` is a place (a city) and never a date of birth, and
``email_address`` is an e-mail, not a street address.

A hint is *strong* when the name alone says it (``first_name``, ``ssn``, ``passport``) and
*weak* when the table or the values must agree (``name``, ``first``, ``last``, ``prefix``,
``genre``). Each entry also says which column types it applies to: a date kind only fits a
date, a timestamp or text (which must then hold dates).

Example:
    >>> tokens("BillingFirstName"), tokens("DATEOFBIRTH"), tokens("OWNERNAME")
    (('billing', 'first', 'name'), ('date', 'of', 'birth'), ('owner', 'name'))
    >>> [(h.kind, h.strength) for h in read_name("emergency_contact_last", "text").hints]
    [('last_name', 'strong')]
    >>> [(h.kind, h.strength) for h in read_name("LAST", "text").hints]
    [('last_name', 'weak')]
    >>> read_name("BIRTHPLACE", "text").kinds(), read_name("Geburtsdatum", "date").kinds()
    (['city'], ['date_of_birth'])
    >>> read_name("product_name", "text").thing, read_name("email_verified", "boolean").hints
    (True, ())
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from datastage.identify.reference import words_of

Strength = Literal["strong", "weak"]

TEXT = frozenset({"text", "json", "other", "array"})
DATES = frozenset({"date", "datetime", "text", "other"})
NUMBERS = frozenset({"integer", "decimal", "float"})
CODES = frozenset({"text", "other", "integer", "decimal"})  # identifiers some schemas store as numbers
GEO = frozenset({"float", "decimal", "text", "other"})
ANY: frozenset[str] | None = None


@dataclass(frozen=True)
class Entry:
    """Phrases (space-separated tokens) that name one kind; ``=phrase``: the whole name once roles are stripped."""

    kind: str
    phrases: tuple[str, ...]
    strength: Strength = "strong"
    types: frozenset[str] | None = ANY


def _e(kind: str, phrases: str, strength: Strength = "strong", types: frozenset[str] | None = ANY) -> Entry:
    return Entry(kind, tuple(p.strip() for p in phrases.split(",") if p.strip()), strength, types)


# Each line: a kind and its phrases, comma-separated (English first, then de, fr, es, it, nl, pt, sv, da, no,
# fi, pl, cs). Accents are folded away before matching, so "prénom" is written "prenom".
ENTRIES: tuple[Entry, ...] = (
    _e("first_name", "first name, given name, fore name, forename, forenames, christian name, middle name, "
       "=fname, =f name, first nm, frst nm, =given names, vorname, vornamen, rufname, zweitname, prenom, prenoms, "
       "=nombre pila, nombre de pila, primer nombre, segundo nombre, nome proprio, primo nome, primeiro nome, "
       "voornaam, voornamen, roepnaam, fornamn, fornavn, etunimi, etunimet, imie, imiona, drugie imie, jmeno, "
       "krestni jmeno, middle initial, =initials", types=TEXT),
    _e("first_name", "=first, =given, =middle, =mi", "weak", TEXT),
    _e("last_name", "last name, surname, surnames, sur name, family name, =lname, =l name, last nm, maiden name, "
       "=maiden, birth name, nachname, familienname, zuname, geburtsname, nom de famille, nom famille, "
       "nom de naissance, nom naissance, nom jeune fille, apellido, apellidos, primer apellido, segundo apellido, "
       "cognome, sobrenome, apelido, achternaam, familienaam, geslachtsnaam, efternamn, efternavn, etternavn, "
       "sukunimi, nazwisko, nazwisko rodowe, prijmeni", types=TEXT),
    _e("last_name", "=last, =family", "weak", TEXT),
    _e("full_name", "full name, person name, personal name, contact name, contact person, card holder, cardholder, "
       "holder name, account holder, display name, real name, legal name, recipient name, =recipient, "
       "=addressee, attendee name, passenger name, nome completo, nombre completo, nom complet, "
       "vollstandiger name, volledige naam, fullt namn, fulde navn, fullt navn, koko nimi, imie i nazwisko, "
       "cele jmeno, ansprechpartner, kontaktperson, =persona contacto", types=TEXT),
    # A generic "name": a person's name only in a person table, or after a person role (owner_name).
    _e("full_name", "=name, =names, =naam, =navn, =namn, =nimi, =nome, =nombre, =nom, =imie nazwisko",
       "weak", TEXT),
    _e("name_affix", "name prefix, name suffix, name title, title of courtesy, courtesy title, salutation, "
       "honorific, honorific prefix, anrede, civilite, tratamiento, titolo cortesia, aanhef, =title courtesy",
       types=TEXT),
    _e("name_affix", "=prefix, =suffix, =titel", "weak", TEXT),
    _e("username", "user name, username, usernames, login, login name, logon name, screen name, nick name, nickname, "
       "=handle, user handle, benutzername, nom utilisateur, nombre usuario, nome utente, gebruikersnaam, "
       "anvandarnamn, brugernavn, brukernavn, kayttajatunnus, nazwa uzytkownika, uzivatelske jmeno", types=TEXT),
    _e("email", "e mail, email, emails, =mail, mail address, mail addr, email address, email addr, mailto, "
       "courriel, adresse mail, adresse electronique, correo, correo electronico, posta elettronica, "
       "endereco eletronico, e post, epost, e postadress, sahkoposti, adres email", types=TEXT),
    _e("phone", "phone, phones, telephone, tel, tel no, telno, phone number, phone no, telefon, telefonnummer, "
       "rufnummer, mobile, mobile number, mobil, mobilnummer, cell, cellphone, cellular, handy, msisdn, gsm, "
       "=portable, =mob, contact number, telefono, movil, celular, cellulare, telefone, telemovel, telefoon, "
       "telefoonnummer, mobiel, puhelin, puhelinnumero, matkapuhelin, telefonu, numer telefonu, komorka",
       types=CODES),
    _e("fax", "fax, telefax, fax number, fax no, faxnummer", types=CODES),
    _e("street_address", "street, street address, street name, street line, streetname, address, addresses, "
       "=addr, addr line, address line, mailing address, postal address, "
       "home address, house number, house no, house nr, flat number, apartment number, suite number, "
       "strasse, anschrift, adresse, hausnummer, rue, voie, calle, direccion, domicilio, indirizzo, via, "
       "endereco, morada, logradouro, straat, straatnaam, huisnummer, adres, gatuadress, gatuadress, adresse, "
       "gateadresse, osoite, katuosoite, ulica, adres zamieszkania, ulice, adresa", types=TEXT),
    _e("street_address", "=line, =address line", "weak", TEXT),
    _e("city", "city, town, birthplace, birth place, place of birth, birth city, birth town, hometown, home town, "
       "county, suburb, borough, village, municipality, neighbourhood, neighborhood, locality, "
       "ort, wohnort, stadt, gemeinde, geburtsort, landkreis, ville, commune, lieu de naissance, lieu naissance, "
       "ciudad, localidad, municipio, lugar de nacimiento, lugar nacimiento, citta, comune, luogo di nascita, "
       "luogo nascita, cidade, concelho, local de nascimento, naturalidade, plaats, woonplaats, geboorteplaats, "
       "stad, ort, kommun, fodelseort, kommune, kaupunki, paikkakunta, kunta, syntymapaikka, miasto, "
       "miejscowosc, gmina, miejsce urodzenia, mesto, obec, misto narozeni", types=TEXT),
    _e("postcode", "postcode, post code, postal code, postalcode, zip, zip code, zipcode, zip4, plz, postleitzahl, "
       "code postal, =cp, codigo postal, =cap, codice postale, =cep, codigo postal, postnummer, postnr, "
       "postinumero, kod pocztowy, psc, eircode", types=CODES),
    _e("geo_coordinates", "lat, latitude, =lon, lng, longitude, lat lng, lat lon, latlng, geo location, geolocation, "
       "geo point, geopoint, coordinates, coords, gps, home location, breitengrad, langengrad, "
       "laengengrad", types=GEO),
    _e("date_of_birth", "birth, birth date, birthdate, birth day, birthday, date of birth, dob, born, born on, "
       "geburt, geburtsdatum, geburtstag, naissance, date de naissance, date naissance, nacimiento, "
       "fecha de nacimiento, fecha nacimiento, data di nascita, data nascita, data de nascimento, "
       "data nascimento, geboortedatum, geboorte, fodelsedatum, fodelsedag, fodselsdato, fodselsdag, "
       "syntymaaika, syntymapaiva, data urodzenia, datum narozeni", types=DATES),
    _e("age", "age, =ages, age years, age in years, birth year, year of birth, =alter, edad, eta, idade, leeftijd, "
       "alder, =ika, wiek, vek, geburtsjahr, annee de naissance, ano de nacimiento, anno di nascita",
       types=NUMBERS | TEXT),
    _e("event_date", "death, death date, deathdate, date of death, died, died on, deceased, deceased date, "
       "decease date, dod, admission, admission date, admit date, admitted, admitted on, discharge, "
       "discharge date, discharged, discharged on, date of service, service date, visit date, surgery date, "
       "procedure date, diagnosis date, onset date, hospitalisation date, hospitalization date, "
       "sterbedatum, todesdatum, aufnahmedatum, entlassungsdatum, date de deces, date deces, fecha de defuncion, "
       "fecha defuncion, data di morte, data do obito, overlijdensdatum, dodsdatum, dodsdato, kuolinpaiva, "
       "data zgonu, datum umrti", types=DATES),
    _e("gender", "gender, sex, geschlecht, sexe, sexo, sesso, geslacht, kon, kjonn, kjon, sukupuoli, plec, pohlavi",
       types=ANY),
    _e("gender", "=genre", "weak", TEXT),  # French for gender, but also a music genre: the values decide
    _e("national_id", "ssn, ssns, social security, social security number, social sec, soc sec, national id, "
       "national identity, national identification, national insurance, national insurance number, nino, "
       "ni number, ni no, =nin, =sin, social insurance number, personal number, personal id number, "
       "personal identification number, personnummer, personal identity number, id card, identity card, "
       "id card number, identity number, citizen id, ausweis, ausweisnummer, personalausweis, "
       "sozialversicherungsnummer, svnr, rentenversicherungsnummer, ahv, ahv nummer, avs, nir, insee, "
       "numero insee, securite sociale, numero securite sociale, carte identite, carte d identite, cni, dni, "
       "nie, documento identidad, documento de identidad, cedula, numero seguridad social, carta identita, "
       "carta d identita, numero identificacao, bi, cartao cidadao, burgerservicenummer, bsn, sofinummer, "
       "sofi nummer, identiteitskaart, personnr, cpr, cpr nummer, cpr nr, personnummer, fodselsnummer, "
       "hetu, henkilotunnus, sotu, pesel, rodne cislo, rc, =aadhaar, pps, pps number", types=CODES),
    _e("tax_id", "tax id, tax number, tax no, tax identification, tax identification number, =tin, itin, "
       "taxpayer id, steuer id, steuerid, steuernummer, steueridentifikationsnummer, idnr, numero fiscal, "
       "numero fiscale, codice fiscale, =cf, cpf, =nif, nif number, identificacion fiscal, =rfc, utr, "
       "=tfn, fiscal code, fiscal number, numero contribuinte, =nip, =dic, =tax", types=CODES),
    _e("passport", "passport, passports, passport number, passport no, passport nr, reisepass, reisepassnummer, "
       "passnummer, passeport, numero passeport, pasaporte, numero pasaporte, passaporto, passaporte, "
       "paspoort, paspoortnummer, passnummer, passi, passin numero, paszport, numer paszportu, cestovni pas",
       types=CODES),
    _e("drivers_licence", "drivers, driver license, driver licence, drivers license, drivers licence, "
       "driving license, driving licence, driver license number, dl number, dl no, dl num, dl nr, =dl, "
       "licence de conduire, fuhrerschein, fuhrerscheinnummer, fuehrerschein, permis de conduire, permis, "
       "numero permis, carnet de conducir, carnet conducir, licencia de conducir, licencia conducir, "
       "patente di guida, patente guida, =patente, carta de conducao, carteira de motorista, cnh, rijbewijs, "
       "rijbewijsnummer, korkort, korekort, forerkort, ajokortti, prawo jazdy, ridicsky prukaz", types=CODES),
    _e("licence_number", "license, licence, licenses, license number, licence number, license no, licence no, "
       "license id, licence id, license nr, certificate number, certification number, certificate no, "
       "professional license, medical license, npi, dea number, bar number, registration number, "
       "lizenznummer, numero licence, numero licencia, numero licenza, vergunningnummer", types=CODES),
    _e("medical_record_number", "mrn, medical record, medical record number, med rec, med rec no, mrn number, "
       "patient number, patient no, patient nr, chart number, chart no, health record number, ehr number, "
       "nhs number, nhs no, chi number, =nhs, patientennummer, numero dossier, numero historia clinica, "
       "historia clinica, cartella clinica, patientnummer, journalnummer", types=CODES),
    _e("health_plan_id", "subscriber id, subscriber number, subscriber no, beneficiary, beneficiary id, "
       "beneficiary number, policy number, policy no, policy id, policy nr, insurance id, insurance number, "
       "insurance no, insurance member, insured id, medicaid, medicaid id, medicaid number, medicare, "
       "medicare id, medicare number, =mbi, hicn, payer member, plan member, plan member id, health plan id, "
       "coverage id, versichertennummer, krankenversichertennummer, kvnr, numero adherent, carte vitale, "
       "=ehic, numero afiliacion, numero poliza, numero polizza, polisnummer, verzekerdennummer", types=CODES),
    # A member number is a health plan's only where the table is about health cover (see the scan).
    _e("health_plan_id", "member id, member number, member no, member nr, memberid, membership number, "
       "membership id, membership no", "weak", CODES),
    _e("account_number", "account number, account no, account num, account nr, acct number, acct no, acct num, "
       "bank account, bank account number, kontonummer, kontonr, numero compte, numero de compte, "
       "numero cuenta, numero de cuenta, numero conto, numero de conta, rekeningnummer, rekening nummer, "
       "kontonummer, tilinumero, numer konta, cislo uctu", types=CODES),
    _e("card_number", "card number, card no, card num, card nr, cc number, cc num, cc no, credit card, "
       "credit card number, debit card, =pan, primary account number, kartennummer, numero carte, "
       "numero de carte, numero tarjeta, numero de tarjeta, numero carta, kaartnummer, kortnummer, "
       "kortinumero, numer karty", types=CODES),
    _e("iban", "iban, iban number, iban code, iban nr", types=TEXT),
    _e("vehicle_id", "vin, vin number, vehicle identification number, vehicle id, chassis number, plate, plates, "
       "plate number, plate no, license plate, licence plate, number plate, registration plate, "
       "vehicle registration, registration mark, car registration, car reg, kennzeichen, nummernschild, "
       "autokennzeichen, immatriculation, plaque immatriculation, matricula, placa, targa, kenteken, "
       "registreringsnummer, regnr, rekisterinumero, tablica rejestracyjna, numer rejestracyjny, spz",
       types=CODES),
    _e("device_id", "udi, device id, device identifier, device serial, device serial number, serial number, "
       "serial no, serial nr, serialnumber, =serial, =sn, =s n, imei, imei number, meid, mac address, mac addr, "
       "=mac, hardware id, hardware address, android id, advertising id, idfa, idfv, gaid, seriennummer, "
       "numero de serie, numero serie, numero di serie, serienummer, sarjanumero, numer seryjny, vyrobni cislo",
       types=CODES),
    _e("url", "homepage, home page, website, web site, webpage, web page, web address, personal url, profile url, "
       "profile link, blog, blog url, linkedin, facebook, twitter, instagram, social url, social profile, "
       "webseite, site web, sitio web, pagina web, sito web, =url, =uri", "weak", TEXT),
    _e("ip_address", "ip, ip address, ip addr, ipaddress, remote addr, remote address, client ip, ipv4, ipv6, "
       "source ip, src ip, last ip, login ip, ip adresse, adresse ip, direccion ip, indirizzo ip", types=TEXT),
    _e("biometric", "biometric, biometrics, fingerprint, fingerprints, retina, iris scan, face template, "
       "voiceprint, voice print, face id, faceprint, fingerabdruck, empreinte, huella", types=ANY),
    _e("photo", "photo, photos, photograph, picture, avatar, portrait, selfie, =face, headshot, profile image, "
       "profile picture, photo path, foto, bild, lichtbild, imagen, immagine, imagem, kuva, zdjecie, fotka",
       types=ANY),
    _e("photo", "=image, =img", "weak", ANY),
    _e("other_identifier", "employee number, employee no, staff number, staff no, badge number, badge id, "
       "student number, student id, matriculation number, matrikelnummer, personnel number, personalnummer, "
       "customer number, customer no, client number, loyalty number, loyalty card, frequent flyer, "
       "membership card, voter id, numero empleado, numero dipendente, personeelsnummer", types=CODES),
    _e("secret", "password, passwords, pass word, passwd, pwd, secret, secrets, token, tokens, api key, apikey, "
       "private key, secret key, access key, license key, licence key, salt, password hash, hashed password, "
       "otp, =pin, pin code, credential, credentials, passphrase, recovery code, security answer, "
       "auth token, refresh token, access token, session token, session key, passwort, kennwort, "
       "mot de passe, contrasena, senha, parola chiave, wachtwoord, losenord, adgangskode, passord, salasana, "
       "haslo, heslo", types=ANY),
    _e("ethnicity", "race, races, racial, ethnicity, ethnic, ethnic origin, ethnic group, ethnicities, ethnie, "
       "herkunft, etnia, etnicidad, raza, razza, etnicita, raca, etnisch, etnicitet, etnisitet, etnisyys, "
       "pochodzenie etniczne, etnicita", types=ANY),
    _e("religion", "religion, religions, religious, religious affiliation, faith, denomination, confession, "
       "konfession, religionszugehorigkeit, religione, religiao, religie, geloof, uskonto, wyznanie, "
       "vyznani", types=ANY),
    _e("political_opinion", "political, politics, political party, party affiliation, political affiliation, "
       "political opinion, political view, partei, parteizugehorigkeit, parti politique, partido politico, "
       "partito politico", types=ANY),
    _e("trade_union", "trade union, union member, union membership, union affiliation, labour union, labor union, "
       "gewerkschaft, syndicat, sindicato, sindacato, vakbond, fackforening, fagforening, ammattiliitto, "
       "zwiazek zawodowy", types=ANY),
    _e("genetic", "genetic, genetics, genotype, genome, dna, dna sample, gene test, genetic test, snp, "
       "genetisch, genetique, genetico", types=ANY),
    _e("health_condition", "diagnosis, diagnoses, diagnose, diagnostic, health, health status, health condition, "
       "medical condition, medical, medical history, disease, diseases, illness, disability, disabilities, "
       "allergy, allergies, symptom, symptoms, icd, icd10, icd9, blood type, blood group, hiv, pregnancy, "
       "pregnant, mental health, handicap, krankheit, erkrankung, diagnostico, maladie, enfermedad, "
       "malattia, doenca, ziekte, sjukdom, sygdom, sykdom, sairaus, choroba, nemoc, reason description, "
       "reason code, condition description, chief complaint", types=ANY),
    _e("medication", "medication, medications, medicine, medicines, drug, drugs, prescription, prescriptions, rx, "
       "dosage, dose, medikament, medikamente, medicament, medicamento, farmaco, medicijn, lakemedel, "
       "medicin, legemiddel, laake, lek, leky", types=ANY),
    _e("sexual_orientation", "sexual orientation, sexuality, sex life, orientation sexuelle, orientacion sexual, "
       "orientamento sessuale, sexuelle orientierung", types=ANY),
    _e("criminal_record", "criminal, criminal record, criminal history, conviction, convictions, offence, "
       "offences, offense, offenses, arrest, arrests, police record, vorstrafe, vorstrafen, "
       "casier judiciaire, antecedentes penales, casellario giudiziale, strafblad", types=ANY),
    _e("financial", "salary, salaries, income, incomes, annual income, wage, wages, pay rate, hourly rate, "
       "compensation, net worth, credit score, credit rating, gehalt, lohn, einkommen, salaire, revenu, "
       "salario, sueldo, ingresos, stipendio, reddito, salaris, inkomen, loon, lonn, palkka, tulot, pensja, "
       "wynagrodzenie, mzda, healthcare expenses, healthcare coverage", types=ANY),
)

# Role words stripped from either end of a name. A person role makes a generic name a person's name
# (owner_name, guarantor_first); an address role only says whose address it is (billing_city).
PERSON_ROLES: frozenset[str] = words_of("""
    customer cust client patient pat member subscriber insured policyholder holder owner beneficiary guarantor
    employee emp staff user usr person contact emergency kin nok mother mothers father fathers parent parents
    spouse spouses partner husband wife guardian child children sibling relative doctor dr physician clinician
    nurse practitioner referrer referring attending author reviewer applicant candidate student teacher pupil
    passenger driver traveler traveller guest visitor tenant landlord buyer recipient sender payee signer
    witness victim suspect responsible representative rep agent sales manager supervisor
    kunde kunden mitarbeiter ehepartner mutter vater eltern arzt kind klient cliente paciente conyuge madre padre
    klant moeder vader kund asiakas klient pracownik osoba persona personne persoon henkilo
""")
PERSON_ROLE_PHRASES: tuple[tuple[str, ...], ...] = (
    ("emergency", "contact"), ("next", "of", "kin"), ("policy", "holder"), ("account", "holder"),
    ("card", "holder"), ("legal", "guardian"), ("primary", "care"), ("responsible", "party"),
)
ADDRESS_ROLES: frozenset[str] = words_of("""
    billing bill shipping ship delivery mailing postal home work office business primary secondary alt alternate
    alternative other previous prev old new current permanent temporary temp residential residence
    correspondence invoice main personal private legal registered rechnungs liefer facturation livraison envio
    facturacion spedizione fatturazione domicile domicilio mobile cell
""")
CONNECTORS = frozenset({"of", "du", "de", "del", "della", "do", "da", "des", "la", "le", "van", "der", "the"})

# Things: a name or title of one of these is never a person's name (product_name, nom_produit, genre).
THINGS: frozenset[str] = words_of("""
    product products item items sku article category categories genre genres album albums track tracks song songs
    playlist playlists artist band film films movie movies show episode book books event events venue company
    companies organization organisation org organisations organizations business firm vendor supplier shipper
    carrier brand model make store shop branch department dept team group role job position project task file
    files document table column field host server service application app program plan payer insurer hospital
    clinic facility ward unit warehouse route station airport airline school university course subject topic
    tag label status type kind media format channel campaign tier level currency language locale country
    countries state states province region nation continent land pays pais paese bundesland kanton
    produkt artikel kategorie firma unternehmen abteilung produit entreprise societe categorie producto empresa
    categoria prodotto azienda bedrijf afdeling produkt foretag yritys tuote firma produkt
    device devices drug condition procedure specialty speciality organism vaccine immunization
    allergen template report dashboard widget bucket queue topic repo repository branch commit
""")
# Geography above a city: never a person's name, never a direct identifier on its own.
REGIONS: frozenset[str] = words_of("""
    state province region country nation continent land pays pais paese bundesland kanton provincia regione
    estado staat lan fylke maakunta wojewodztwo kraj
""")
# A trailing word that makes the column about the value, not the value (email_type, phone_verified_at).
META = words_of("""
    type types kind status verified valid validated confirmed confirmation format source category class count
    flag flags opt optin consent preference preferences pref updated changed change modified domain length
    len hash hashed masked template visible visibility public private privacy reminder reminders sent
    bounced bounce blocked enabled disabled required prefix suffix ext extension area country dial
""")
IDENTIFIER_WORDS = frozenset({"id", "ids", "no", "nr", "num", "number", "numbers", "code", "identifier", "ident",
                              "ref", "reference", "nummer", "numero", "numer", "cislo", "tunnus", "nbr", "key"})
# Words people put in table names of person records (after singularising).
PERSON_TABLES: frozenset[str] = words_of("""
    patient person people customer client employee staff user member subscriber contact actor author student
    teacher clinician practitioner physician doctor nurse driver passenger guest applicant candidate profile
    individual citizen resident voter donor volunteer worker personnel guarantor beneficiary insured
    kunde mitarbeiter paciente cliente klant kund asiakas klient pracownik osoba persona personne persoon
    henkilo employe empleado dipendente medewerker anstalld ansat tyontekija zamestnanec
""")
ORGANISATION_TABLES: frozenset[str] = words_of("""
    organization organisation org company supplier shipper vendor payer insurer carrier store shop branch
    warehouse hospital clinic facility bank school university office business firm agency manufacturer
    firma unternehmen entreprise societe empresa azienda bedrijf foretag yritys
""")
# Tables of a person's dealings with a business (sales, deliveries, payments, page views, support tickets):
# their dates are the business's records, not events of the person's care or working life, though each
# row names a customer.
TRANSACTION_TABLES: frozenset[str] = words_of("""
    order sale purchase invoice payment rental booking reservation shipment transaction cart basket receipt
    bill quote quotation refund subscription auftrag bestellung rechnung commande facture pedido factura
    ordine fattura bestelling factuur
    view pageview click impression session log ticket message comment review rating login notification
""")
# Words of record-keeping columns: when a row was written, not when anything happened to a person.
BOOKKEEPING: frozenset[str] = words_of("""
    create created creation insert inserted update updated modify modified modification change changed
    delete deleted timestamp ts sync synced load loaded import imported export exported etl audit version
    row
""")
HEALTH_WORDS: frozenset[str] = words_of("""
    payer insurance insurer insured coverage claim claims medicaid medicare health healthcare enrollment enrolment
    patient encounter subscriber beneficiary copay deductible
""")
_GLUE = words_of("""
    id ids no nr num number code date time name names of on at by is has key ref type year day month address
    line value text desc description first last full given middle maiden birth death place city town home work
    mobile phone fax mail email street zip postal post owner holder member plan payer policy patient provider
    encounter start stop end begin reason expenses coverage healthcare income primary secondary ownership
    relationship membership partnership scholarship internship hardship worship citizenship friendship
    leadership sponsorship championship township
""")


def fold(text: str) -> str:
    """Lower case, accents and ligatures folded: ``Straße`` -> ``strasse``."""
    text = text.lower()
    if text.isascii():
        return text
    text = text.replace("ß", "ss").replace("æ", "ae").replace("œ", "oe").replace("ø", "o").replace("ł", "l")
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


@lru_cache(maxsize=1)
def _index() -> tuple[dict[str, list[tuple[tuple[str, ...], Entry]]], dict[tuple[str, ...], Entry], frozenset[str]]:
    """Phrases by first token, whole-name phrases, and every word the vocabulary knows."""
    phrases: dict[str, list[tuple[tuple[str, ...], Entry]]] = {}
    exact: dict[tuple[str, ...], Entry] = {}
    words: set[str] = set(_GLUE | PERSON_ROLES | ADDRESS_ROLES | THINGS | META | IDENTIFIER_WORDS | CONNECTORS)
    for entry in ENTRIES:
        for phrase in entry.phrases:
            whole = phrase.startswith("=")
            toks = tuple(phrase.lstrip("=").split())
            words.update(toks)
            if whole:
                exact.setdefault(toks, entry)
            else:
                phrases.setdefault(toks[0], []).append((toks, entry))
    for items in phrases.values():
        items.sort(key=lambda item: -len(item[0]))
    return phrases, exact, frozenset(w for w in words if len(w) >= 2)


@lru_cache(maxsize=4096)
def _segment(token: str) -> tuple[str, ...]:
    """Split a run-on token into known words (``dateofbirth`` -> date, of, birth), if it splits completely."""
    known = _index()[2]
    if token in known or len(token) < 5 or not token.isalpha():
        return (token,)
    best: list[tuple[str, ...] | None] = [None] * (len(token) + 1)
    best[0] = ()
    for end in range(2, len(token) + 1):
        for start in range(max(0, end - 24), end - 1):
            head = best[start]
            piece = token[start:end]
            if head is not None and piece in known:
                candidate = (*head, piece)
                current = best[end]
                if current is None or len(candidate) < len(current):
                    best[end] = candidate
    found = best[len(token)]
    return found if found else (token,)


@lru_cache(maxsize=8192)
def tokens(name: str) -> tuple[str, ...]:
    """The words of a column or table name, folded, run-ons split."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", name)
    out: list[str] = []
    for raw in re.split(r"[^0-9a-z]+", fold(spaced)):
        if not raw:
            continue
        for part in re.findall(r"[a-z]+|\d+", raw):
            if part.isdigit():
                continue  # address1, line_2, phone2: the number says which one, not what
            out.extend(_segment(part))
    return tuple(out)


def singular(word: str) -> str:
    """``patients`` -> ``patient``, ``categories`` -> ``category`` (English plurals; other words unchanged)."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("sses", "xes", "ches", "shes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


@dataclass(frozen=True)
class NameHint:
    """One kind a column name suggests."""

    kind: str
    strength: Strength


@dataclass(frozen=True)
class NameReading:
    """What a column name says: its tokens, the kinds it suggests, and whose value or what thing it names."""

    tokens: tuple[str, ...]
    hints: tuple[NameHint, ...]
    person_role: bool = False  # a person role word was stripped (owner_, guarantor_, _client)
    address_role: bool = False  # billing_, ship_, home_ ...
    thing: bool = False  # names a thing or a region (product_name, genre, state): never a person's name
    meta: bool = False  # about the value, not the value (email_type, phone_verified)
    identifier_word: bool = False  # ends in id / number / code

    def kinds(self) -> list[str]:
        return [h.kind for h in self.hints]

    def strength(self, kind: str) -> Strength | None:
        for hint in self.hints:
            if hint.kind == kind:
                return hint.strength
        return None


CONTACT_KINDS = frozenset({"first_name", "last_name", "full_name", "username", "email", "phone", "fax",
                           "street_address", "city", "postcode", "url", "photo", "name_affix"})
NAME_KINDS = frozenset({"first_name", "last_name", "full_name"})
_NUMBER_WORDS = frozenset({"no", "nr", "nos", "num", "number", "numbers", "nummer", "numero", "numer", "nbr"})


def _strip_roles(toks: tuple[str, ...], table_words: frozenset[str]) -> tuple[tuple[str, ...], bool, bool, bool]:
    """Role words off both ends: (rest, person role seen, address role seen, thing word seen)."""
    person = address = thing = False
    rest = [t for t in toks if t not in CONNECTORS] or list(toks)
    while len(rest) > 1:
        phrase = next((p for p in PERSON_ROLE_PHRASES if len(rest) > len(p) and tuple(rest[:len(p)]) == p), None)
        head, tail = rest[0], rest[-1]
        if phrase is not None:
            rest, person = rest[len(phrase):], True
        elif head in PERSON_ROLES or (head in table_words and head not in THINGS):
            person = person or head in PERSON_ROLES or head in PERSON_TABLES
            rest = rest[1:]
        elif head in ADDRESS_ROLES:
            rest, address = rest[1:], True
        elif head in THINGS or head in REGIONS:
            rest, thing = rest[1:], True
        elif tail in PERSON_ROLES:
            rest, person = rest[:-1], True
        elif tail in ADDRESS_ROLES:
            rest, address = rest[:-1], True
        elif tail in THINGS or tail in REGIONS:
            rest, thing = rest[:-1], True
        else:
            break
    return tuple(rest), person, address, thing


def read_name(name: str, category: str | None = None, table_words: frozenset[str] = frozenset()) -> NameReading:
    """The hints a column name gives for a column of type ``category`` (None: any) in a table named by
    ``table_words`` (its singular tokens: a leading table word is stripped like a role)."""
    toks = tokens(name)
    if not toks:
        return NameReading(toks, ())
    phrases, exact, _ = _index()
    used = [False] * len(toks)
    found: list[tuple[int, int, Entry]] = []
    for i, tok in enumerate(toks):
        for phrase, entry in phrases.get(tok, ()):
            n = len(phrase)
            if toks[i:i + n] == phrase and not any(used[i:i + n]):
                found.append((i, i + n, entry))
                used[i:i + n] = [True] * n
                break
    rest, person, address, thing = _strip_roles(toks, table_words)
    thing = thing or (len(rest) == 1 and (rest[0] in THINGS or rest[0] in REGIONS))
    if not found and rest in exact:
        found.append((len(toks), len(toks), exact[rest]))  # the whole name: nothing trails it
    elif not found and len(toks) == 1 and (toks[0] in PERSON_ROLES or singular(toks[0]) in PERSON_TABLES):
        # A column named for a person (patient, customer, owner): their name if its values are names.
        hint = (NameHint("full_name", "weak"),) if category is None or category in TEXT else ()
        return NameReading(toks, hint, person_role=True)
    hints: list[NameHint] = []
    for _start, end, entry in sorted(found, key=lambda item: item[0]):
        tail = toks[end:]
        if entry.types is not None and category is not None and category not in entry.types:
            continue
        if any(t in META for t in tail) or (entry.kind in NAME_KINDS and thing):
            continue
        if entry.kind in CONTACT_KINDS and any(t in IDENTIFIER_WORDS and t not in _NUMBER_WORDS for t in tail):
            continue  # address_id, phone_key: a reference to the value, not the value
        if any(h.kind == entry.kind for h in hints):
            continue
        strength = entry.strength
        if entry.kind in NAME_KINDS and strength == "weak" and person:
            strength = "strong"  # owner_name, guarantor_first, nom_client
        hints.append(NameHint(entry.kind, strength))
    meta = toks[-1] in META and not hints
    return NameReading(toks, tuple(hints), person, address, thing, meta, toks[-1] in IDENTIFIER_WORDS)


def table_words(name: str) -> frozenset[str]:
    """The singular words of a table name (``PatientRecords`` -> patient, record)."""
    return frozenset(singular(t) for t in tokens(name))


def table_role(name: str) -> str | None:
    """``person`` / ``organisation`` / ``thing`` from a table's name alone, or None.

    Any person word makes a person table (``patient_records``, ``drivers_license``); an
    organisation or a thing has to be the head word (``payers``, but not ``payer_transitions``).

    >>> table_role("PatientRecords"), table_role("payers"), table_role("payer_transitions"), table_role("genres")
    ('person', 'organisation', None, 'thing')
    """
    toks = [singular(t) for t in tokens(name)]
    if not toks:
        return None
    if set(toks) & PERSON_TABLES:
        return "person"
    if toks[-1] in ORGANISATION_TABLES:
        return "organisation"
    if toks[-1] in THINGS:
        return "thing"
    return None

