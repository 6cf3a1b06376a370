"""A music store in the style of Chinook: artists, albums, tracks, customers, employees, invoices.

What it reproduces: CamelCase column names (``FirstName``, ``BillingPostalCode``); catalogue
text that looks like names (album titles ``Lucy``, artists that are people or bands, a
``Composer`` credit); ``Genre``/``MediaType`` lookups and a ``GenreId`` key; two-letter
state codes (``SP``, ``CA``) beside given names; customers' and employees' phone *and* fax
numbers in international formats; invoices with ``Billing*`` address columns.

Example:
    >>> specs = tables(seed=1)
    >>> [c.name for c in next(t for t in specs if t.name == "Customer").cols][:3]
    ['CustomerId', 'FirstName', 'LastName']
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import sqlalchemy as sa
from corpus_kit import KEY, Col, D, N, Q, Rows, Table, faker, pick

STYLE = "music store (Chinook-like)"
TXT = sa.String(160)

GENRES = ["Rock", "Jazz", "Metal", "Alternative & Punk", "Rock And Roll", "Blues", "Latin", "Reggae", "Pop",
          "Soundtrack", "Bossa Nova", "Easy Listening", "Heavy Metal", "R&B/Soul", "Electronica/Dance", "World",
          "Hip Hop/Rap", "Science Fiction", "TV Shows", "Sci Fi & Fantasy", "Drama", "Comedy", "Alternative",
          "Classical", "Opera"]
MEDIA = ["MPEG audio file", "Protected AAC audio file", "Protected MPEG-4 video file", "Purchased AAC audio file",
         "AAC audio file"]
WORDS = ["Rock", "Night", "Love", "Blue", "Highway", "Fire", "Dream", "Heart", "Road", "Moon", "Rain", "Stone",
         "Little", "Big", "Wild", "Heaven", "City", "Sun", "Electric", "Black", "Angel", "River", "Gold", "Shadow"]
TITLED = ["Lucy", "Roxanne", "Maria", "Jolene", "Layla", "Angie", "Gloria", "Michelle", "Sara", "Daniel"]
STATES = ["SP", "RJ", "CA", "NY", "WA", "AB", "ON", "BC", "NS", "QC", "TX", "FL", "IL", "MA", "NV", "AZ", "UT",
          "WI", "DF", "RM", "VV", "Dublin"]
COUNTRIES = ["Brazil", "Germany", "Canada", "Norway", "Czech Republic", "Austria", "Belgium", "Denmark", "USA",
             "Portugal", "France", "Finland", "Hungary", "Ireland", "Italy", "Netherlands", "Poland", "Spain",
             "Sweden", "United Kingdom", "Australia", "Argentina", "Chile", "India"]


def _title(rng: random.Random) -> str:
    if rng.random() < 0.12:
        return rng.choice(TITLED)  # a title that is a given name
    return " ".join(rng.sample(WORDS, rng.randint(1, 4)))


def _intl_phone(rng: random.Random, country: str) -> str:
    codes = {"Brazil": "+55", "Germany": "+49", "Canada": "+1", "Norway": "+47", "USA": "+1", "France": "+33",
             "United Kingdom": "+44", "India": "+91", "Australia": "+61"}
    code = codes.get(country, f"+{rng.randint(30, 60)}")
    if code == "+1":
        return f"+1 ({rng.randint(201, 989)}) {rng.randint(200, 999)}-{rng.randint(0, 9999):04d}"
    return f"{code} {rng.randint(10, 99)} {rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}"


def tables(seed: int = 16, customers: int = 200, tracks: int = 800) -> list[Table]:
    """The music-store database."""
    fake = faker(seed, ["en_US", "pt_BR", "de_DE", "fr_FR"])
    rng = random.Random(seed)

    n_art = 150
    artists: Rows = {"ArtistId": list(range(1, n_art + 1)),
                     "Name": [(fake.name() if rng.random() < 0.4 else
                               f"{rng.choice(['The ', ''])}{rng.choice(WORDS)} {rng.choice(WORDS)}s")
                              for _ in range(n_art)]}
    n_alb = 250
    album_artist = pick(rng, artists["ArtistId"], n_alb)
    albums: Rows = {"AlbumId": list(range(1, n_alb + 1)),  # some albums are self-titled: the artist's name
                    "Title": [artists["Name"][a - 1] if rng.random() < 0.15 else _title(rng) for a in album_artist],
                    "ArtistId": album_artist}
    track_rows: Rows = {
        "TrackId": list(range(1, tracks + 1)),
        "Name": [_title(rng) for _ in range(tracks)],
        "AlbumId": pick(rng, albums["AlbumId"], tracks),
        "MediaTypeId": pick(rng, range(1, len(MEDIA) + 1), tracks, weights=[80, 5, 5, 3, 7]),
        "GenreId": pick(rng, range(1, len(GENRES) + 1), tracks),
        "Composer": [", ".join(fake.name() for _ in range(rng.randint(1, 3))) if rng.random() < 0.7 else None
                     for _ in range(tracks)],
        "Milliseconds": [rng.randint(60000, 600000) for _ in range(tracks)],
        "Bytes": [rng.randint(1_000_000, 12_000_000) for _ in range(tracks)],
        "UnitPrice": [rng.choice([0.99, 1.99]) for _ in range(tracks)],
    }
    n_emp = 8
    emp_country = pick(rng, ["Canada"], n_emp)
    employees: Rows = {
        "EmployeeId": list(range(1, n_emp + 1)),
        "LastName": [fake.last_name() for _ in range(n_emp)],
        "FirstName": [fake.first_name() for _ in range(n_emp)],
        "Title": ["General Manager", "Sales Manager", "Sales Support Agent", "Sales Support Agent",
                  "Sales Support Agent", "IT Manager", "IT Staff", "IT Staff"],
        "ReportsTo": [None, 1, 2, 2, 2, 1, 6, 6],
        "BirthDate": [datetime(1947, 1, 1) + timedelta(days=rng.randint(0, 30 * 365)) for _ in range(n_emp)],
        "HireDate": [datetime(2002, 1, 1) + timedelta(days=rng.randint(0, 3 * 365)) for _ in range(n_emp)],
        "Address": [fake.street_address() for _ in range(n_emp)],
        "City": pick(rng, ["Edmonton", "Calgary", "Lethbridge"], n_emp),
        "State": ["AB"] * n_emp,
        "Country": emp_country,
        "PostalCode": [f"T{rng.randint(1, 9)}K {rng.randint(1, 9)}N{rng.randint(1, 9)}" for _ in range(n_emp)],
        "Phone": [_intl_phone(rng, c) for c in emp_country],
        "Fax": [_intl_phone(rng, c) for c in emp_country],
        "Email": [f"{fake.first_name().lower()}@chinookcorp.com" for _ in range(n_emp)],
    }
    cust_country = pick(rng, COUNTRIES, customers)
    first = [fake.first_name() for _ in range(customers)]
    last = [fake.last_name() for _ in range(customers)]
    customer_rows: Rows = {
        "CustomerId": list(range(1, customers + 1)),
        "FirstName": first,
        "LastName": last,
        "Company": [fake.company() if rng.random() < 0.2 else None for _ in range(customers)],
        "Address": [fake.street_address() for _ in range(customers)],
        "City": [fake.city() for _ in range(customers)],
        "State": [rng.choice(STATES) if rng.random() < 0.5 else None for _ in range(customers)],
        "Country": cust_country,
        "PostalCode": [fake.postcode() if rng.random() < 0.9 else None for _ in range(customers)],
        "Phone": [_intl_phone(rng, c) for c in cust_country],
        "Fax": [_intl_phone(rng, c) if rng.random() < 0.3 else None for c in cust_country],
        "Email": [f"{f[0]}{la}@{fake.free_email_domain()}".lower().replace(" ", "") for f, la in zip(first, last)],
        "SupportRepId": pick(rng, [3, 4, 5], customers),
    }
    n_inv = 400
    inv_cust = pick(rng, range(customers), n_inv)
    invoices: Rows = {
        "InvoiceId": list(range(1, n_inv + 1)),
        "CustomerId": [i + 1 for i in inv_cust],
        "InvoiceDate": [datetime(2021, 1, 1) + timedelta(days=rng.randint(0, 1500)) for _ in range(n_inv)],
        "BillingAddress": [customer_rows["Address"][i] for i in inv_cust],
        "BillingCity": [customer_rows["City"][i] for i in inv_cust],
        "BillingState": [customer_rows["State"][i] for i in inv_cust],
        "BillingCountry": [customer_rows["Country"][i] for i in inv_cust],
        "BillingPostalCode": [customer_rows["PostalCode"][i] for i in inv_cust],
        "Total": [round(rng.uniform(0.99, 25.86), 2) for _ in range(n_inv)],
    }
    n_lines = 900
    invoice_lines: Rows = {
        "InvoiceLineId": list(range(1, n_lines + 1)), "InvoiceId": pick(rng, invoices["InvoiceId"], n_lines),
        "TrackId": pick(rng, track_rows["TrackId"], n_lines),
        "UnitPrice": [rng.choice([0.99, 1.99]) for _ in range(n_lines)],
        "Quantity": [1] * n_lines,
    }
    playlists: Rows = {"PlaylistId": list(range(1, 19)),
                       "Name": ["Music", "Movies", "TV Shows", "Audiobooks", "90's Music", "Music Videos",
                                "Brazilian Music", "Classical", "Classical 101 - Deep Cuts", "Grunge",
                                "Heavy Metal Classic", "On-The-Go 1", "Road Trip", "Sunday Chill", "Workout",
                                "Party", "Focus", "Summer"]}
    pairs = sorted({(rng.randint(1, 18), rng.randint(1, tracks)) for _ in range(600)})
    playlist_track: Rows = {"PlaylistId": [p[0] for p in pairs], "TrackId": [p[1] for p in pairs]}

    return [
        Table("Artist", [Col("ArtistId", sa.Integer, KEY, pk=True),
                         Col("Name", TXT, N("a performer's credited name: catalogue data, mostly bands",
                                            alt=("D",)))], artists),
        Table("Album", [Col("AlbumId", sa.Integer, KEY, pk=True), Col("Title", TXT, N("an album title")),
                        Col("ArtistId", sa.Integer, KEY, fk="Artist.ArtistId")], albums),
        Table("Genre", [Col("GenreId", sa.Integer, KEY, pk=True), Col("Name", TXT, N("a genre"))],
              {"GenreId": list(range(1, len(GENRES) + 1)), "Name": GENRES}),
        Table("MediaType", [Col("MediaTypeId", sa.Integer, KEY, pk=True), Col("Name", TXT, N("a media type"))],
              {"MediaTypeId": list(range(1, len(MEDIA) + 1)), "Name": MEDIA}),
        Table("Track", [
            Col("TrackId", sa.Integer, KEY, pk=True), Col("Name", TXT, N("a track title")),
            Col("AlbumId", sa.Integer, KEY, fk="Album.AlbumId"),
            Col("MediaTypeId", sa.Integer, KEY, fk="MediaType.MediaTypeId"),
            Col("GenreId", sa.Integer, KEY, fk="Genre.GenreId"),
            Col("Composer", sa.String(220), N("a published songwriting credit", alt=("D",))),
            Col("Milliseconds", sa.Integer, N("a duration")), Col("Bytes", sa.Integer, N("a size")),
            Col("UnitPrice", sa.Numeric(10, 2), N("a price")),
        ], track_rows),
        Table("Employee", [
            Col("EmployeeId", sa.Integer, KEY, pk=True),
            Col("LastName", sa.String(20), D("last_name")), Col("FirstName", sa.String(20), D("first_name")),
            Col("Title", sa.String(30), N("a job title", alt=("Q",))),
            Col("ReportsTo", sa.Integer, KEY, fk="Employee.EmployeeId"),
            Col("BirthDate", sa.DateTime, Q("date_of_birth")),
            Col("HireDate", sa.DateTime, Q("event_date", why="a date in an employee's working life")),
            Col("Address", sa.String(70), D("street_address")), Col("City", sa.String(40), Q("city")),
            Col("State", sa.String(40), N("a state or province code: HIPAA Safe Harbor keeps states")),
            Col("Country", sa.String(40), N("a country")),
            Col("PostalCode", sa.String(10), Q("postcode")),
            Col("Phone", sa.String(24), D("phone")), Col("Fax", sa.String(24), D("fax", "phone")),
            Col("Email", sa.String(60), D("email")),
        ], employees),
        Table("Customer", [
            Col("CustomerId", sa.Integer, KEY, pk=True),
            Col("FirstName", sa.String(40), D("first_name")), Col("LastName", sa.String(20), D("last_name")),
            Col("Company", sa.String(80), N("an employer's name", alt=("Q",))),
            Col("Address", sa.String(70), D("street_address")), Col("City", sa.String(40), Q("city")),
            Col("State", sa.String(40), N("a state or province code: HIPAA Safe Harbor keeps states")),
            Col("Country", sa.String(40), N("a country")),
            Col("PostalCode", sa.String(10), Q("postcode")),
            Col("Phone", sa.String(24), D("phone")), Col("Fax", sa.String(24), D("fax", "phone")),
            Col("Email", sa.String(60), D("email")),
            Col("SupportRepId", sa.Integer, KEY, fk="Employee.EmployeeId"),
        ], customer_rows),
        Table("Invoice", [
            Col("InvoiceId", sa.Integer, KEY, pk=True), Col("CustomerId", sa.Integer, KEY, fk="Customer.CustomerId"),
            Col("InvoiceDate", sa.DateTime, N("the date of a sale", alt=("Q",))),
            Col("BillingAddress", sa.String(70), D("street_address")), Col("BillingCity", sa.String(40), Q("city")),
            Col("BillingState", sa.String(40), N("a state or province code: HIPAA Safe Harbor keeps states")),
            Col("BillingCountry", sa.String(40), N("a country")),
            Col("BillingPostalCode", sa.String(10), Q("postcode")),
            Col("Total", sa.Numeric(10, 2), N("the amount of a sale")),
        ], invoices),
        Table("InvoiceLine", [
            Col("InvoiceLineId", sa.Integer, KEY, pk=True), Col("InvoiceId", sa.Integer, KEY, fk="Invoice.InvoiceId"),
            Col("TrackId", sa.Integer, KEY, fk="Track.TrackId"), Col("UnitPrice", sa.Numeric(10, 2), N("a price")),
            Col("Quantity", sa.Integer, N("a count")),
        ], invoice_lines),
        Table("Playlist", [Col("PlaylistId", sa.Integer, KEY, pk=True), Col("Name", TXT, N("a playlist"))],
              playlists),
        Table("PlaylistTrack", [Col("PlaylistId", sa.Integer, KEY, pk=True, fk="Playlist.PlaylistId"),
                                Col("TrackId", sa.Integer, KEY, pk=True, fk="Track.TrackId")], playlist_track),
    ]
