"""The demo project: a sample *production* SQLite database and a project that refreshes it.

The database is generated with Faker from a seed and is awkward on purpose, like real
schemas: an FK cycle through a nullable column (departments and their head employee), a
self-referencing manager, a composite primary key, an FK to a UNIQUE non-PK column, a
table without a primary key, Luhn-valid card numbers, and support tickets whose free
text mentions customers' e-mail addresses and phone numbers.

Example:
    >>> import tempfile
    >>> result = build_demo(Path(tempfile.mkdtemp()) / "demo")
    >>> result.rows["customer"], result.rows["orders"], sorted(p.name for p in result.directory.iterdir())
    (2000, 6000, ['.gitignore', 'datastage.yaml', 'masking.key', 'prod.db', 'rules', 'signing.key', 'signing.key.pub'])
"""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from faker import Faker

from datastage.cards import luhn_check_digit
from datastage.errors import UsageError
from datastage.mask.keys import write_key_file
from datastage.report.signing import write_signing_key
from datastage.source.identifiers import SQLITE, quote_identifier

SCHEMA = """
CREATE TABLE country (
    country_id INTEGER PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL
);
CREATE TABLE customer (
    customer_id INTEGER PRIMARY KEY,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE,
    phone TEXT,
    birth_date DATE,
    country_code TEXT NOT NULL REFERENCES country (code),
    active INTEGER NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL
);
CREATE TABLE address (
    address_id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customer (customer_id),
    line1 TEXT NOT NULL,
    city TEXT NOT NULL,
    postcode TEXT NOT NULL,
    country_code TEXT NOT NULL REFERENCES country (code),
    is_default INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE department (
    department_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    head_employee_id INTEGER REFERENCES employee (employee_id)
);
CREATE TABLE employee (
    employee_id INTEGER PRIMARY KEY,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE,
    manager_id INTEGER REFERENCES employee (employee_id),
    department_id INTEGER NOT NULL REFERENCES department (department_id),
    salary NUMERIC(10, 2) NOT NULL,
    hired_on DATE NOT NULL
);
CREATE TABLE product (
    product_id INTEGER PRIMARY KEY,
    sku TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    category TEXT NOT NULL,
    price NUMERIC(10, 2) NOT NULL CHECK (price >= 0)
);
CREATE TABLE orders (
    order_id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customer (customer_id),
    sales_rep_id INTEGER REFERENCES employee (employee_id),
    shipping_address_id INTEGER REFERENCES address (address_id),
    ship_email TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('new', 'paid', 'shipped', 'cancelled')),
    ordered_at TIMESTAMP NOT NULL
);
CREATE INDEX orders_customer ON orders (customer_id);
CREATE TABLE order_item (
    order_id INTEGER NOT NULL REFERENCES orders (order_id),
    line_no INTEGER NOT NULL,
    product_id INTEGER NOT NULL REFERENCES product (product_id),
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    unit_price NUMERIC(10, 2) NOT NULL,
    PRIMARY KEY (order_id, line_no)
);
CREATE TABLE payment (
    payment_id INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL REFERENCES orders (order_id),
    card_holder TEXT NOT NULL,
    card_number TEXT NOT NULL,
    amount NUMERIC(10, 2) NOT NULL,
    paid_at TIMESTAMP NOT NULL
);
CREATE TABLE support_ticket (
    ticket_id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customer (customer_id),
    assigned_to INTEGER REFERENCES employee (employee_id),
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL,
    opened_at TIMESTAMP NOT NULL
);
CREATE TABLE page_view (
    customer_id INTEGER REFERENCES customer (customer_id),
    url TEXT NOT NULL,
    ip_address TEXT NOT NULL,
    viewed_at TIMESTAMP NOT NULL
);
CREATE TABLE app_settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE audit_log (
    log_id INTEGER PRIMARY KEY,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT,
    logged_at TIMESTAMP NOT NULL
);
"""

CONFIG = """\
# A datastage project: where production data comes from and which environments it refreshes.
source:
  url: sqlite:///prod.db            # the sample production database (datastage only reads it)
masking:
  key_file: masking.key             # or set DATASTAGE_MASKING_KEY
signing:
  key_file: signing.key             # Ed25519 key that signs reports (public half: signing.key.pub)
environments:
  staging:
    url: sqlite:///staging.db
    rules: rules/pii.yaml
    subset:
      roots:
        - {table: customer, where: "active = 1", percent: 25}
      passthrough: [country, product, department]
    keep: [app_settings]            # staging's own settings survive every refresh
    ondemand:                       # copies on demand: datastage provision --from staging --var id=1234
      name: "pr_{id}"               # makes pr_1234
      ttl: 8h                       # each copy expires after 8 hours (datastage gc drops it)
      max_copies: 3                 # at most 3 copies at once
      hooks:
        post_provision:             # a smoke test against every new copy
          - sql: "SELECT COUNT(*) FROM customer"
"""

RULES = """\
# What happens to every column of the demo database on its way to staging.
version: 1
locale: en_US
default: fail                       # a column without a rule stops the refresh
tables:
  country: keep
  product: keep
  customer:
    first_name: person.first_name   # the fake person behind the masked e-mail: names and address agree
    last_name: person.last_name
    email: {strategy: email, unique: true}
    phone: phone                    # same format and country code, digits tokenized
    birth_date: {strategy: generalize, to: year}
    country_code: keep
    active: keep
    created_at: keep
  address:
    line1: fake.street_address
    city: fake.city
    postcode: {strategy: generalize, keep: 3}
    country_code: keep
    is_default: keep
  department:
    name: {strategy: keep, reason: "department names are organisational, not personal"}
  employee:
    first_name: person.first_name
    last_name: person.last_name
    email: {strategy: email, unique: true}
    salary: {strategy: generalize, bucket: 5000}
    hired_on: {strategy: generalize, to: month}
  orders:
    ship_email: email               # same domain as customer.email: the same address masks the same
    status: keep
    ordered_at: keep
  order_item:
    quantity: keep
    unit_price: keep
  payment:
    card_holder: fake.name
    card_number: card_number        # Luhn-valid numbers from reserved test ranges only
    amount: keep
    paid_at: keep
  support_ticket:
    subject: {strategy: keep, reason: "chosen from a fixed list of topics"}
    body:                           # free text: mask the e-mails, phones and names it mentions
      strategy: regex
      patterns:
        - {pattern: '[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\\.[A-Za-z0-9-]+)+', with: email}
        - {pattern: '\\+\\d[\\d -]{6,}\\d', with: phone}
        - {pattern: '(?<=this is )[A-Z][a-z]+', with: fake.first_name}
    status: keep
    opened_at: keep
  page_view:
    url: keep
    ip_address: fake.ipv4
    viewed_at: keep
  audit_log: truncate
"""

GITIGNORE = "staging.db*\npr_*.db*\n.datastage/\nmasking.key\nsigning.key\n"

BASE_COUNTS = {"customer": 2000, "employee": 60, "product": 300, "orders": 6000, "support_ticket": 1500,
               "page_view": 10000, "audit_log": 5000}
DEPARTMENTS = ["Sales", "Support", "Engineering", "Finance", "Logistics", "Marketing"]
COUNTRIES = [("US", "United States"), ("GB", "United Kingdom"), ("DE", "Germany"), ("FR", "France"),
             ("NL", "Netherlands"), ("ES", "Spain"), ("IT", "Italy"), ("SE", "Sweden")]
TOPICS = ["Order not delivered", "Refund request", "Wrong item", "Change of address", "Invoice copy",
          "Account locked", "Damaged parcel", "Payment failed"]


@dataclass
class DemoResult:
    """Paths and row counts of a generated demo project."""

    directory: Path
    database: Path
    config: Path
    rules: Path
    key_file: Path
    rows: dict[str, int] = field(default_factory=dict)


def _card(rng: random.Random) -> str:
    prefix = rng.choice(["4532", "4916", "5425", "5167", "3782"])
    length = 15 if prefix.startswith("37") else 16
    body = prefix + "".join(str(rng.randrange(10)) for _ in range(length - len(prefix) - 1))
    return body + luhn_check_digit(body)


def _phone(rng: random.Random) -> str:
    return f"+1-{rng.randrange(201, 989)}-555-{rng.randrange(10000):04d}"


def build_database(path: Path, scale: int = 1, seed: int = 42) -> dict[str, int]:
    """Write the sample production database to ``path`` (replacing it); returns row counts."""
    rng = random.Random(seed)
    fake = Faker("en_US")
    fake.seed_instance(seed)
    counts = {k: v * scale for k, v in BASE_COUNTS.items()}
    path.unlink(missing_ok=True)
    conn = sqlite3.connect(path)
    try:
        conn.executescript(SCHEMA)
        conn.executemany("INSERT INTO country VALUES (?, ?, ?)",
                         [(i + 1, code, name) for i, (code, name) in enumerate(COUNTRIES)])
        codes = [c for c, _ in COUNTRIES]
        start = dt.datetime(2019, 1, 1)

        customers, emails, phones = [], [], []
        for cid in range(1, counts["customer"] + 1):
            first, last = fake.first_name(), fake.last_name()
            email = f"{first}.{last}{cid}@{rng.choice(['gmail.com', 'outlook.com', 'yahoo.com', 'proton.me'])}".lower()
            phone = _phone(rng) if rng.random() > 0.1 else None
            birth = fake.date_of_birth(minimum_age=18, maximum_age=90).isoformat() if rng.random() > 0.05 else None
            created = (start + dt.timedelta(minutes=rng.randrange(3_000_000))).isoformat(sep=" ")
            customers.append((cid, first, last, email, phone, birth, rng.choice(codes), int(rng.random() > 0.2),
                              created))
            emails.append(email)
            phones.append(phone)
        conn.executemany("INSERT INTO customer VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", customers)

        addresses: list[tuple[object, ...]] = []
        customer_addresses: dict[int, list[int]] = {}
        for cid in range(1, counts["customer"] + 1):
            for n in range(1 if rng.random() < 0.8 else 2):
                aid = len(addresses) + 1
                addresses.append((aid, cid, fake.street_address(), fake.city(), fake.postcode(), rng.choice(codes),
                                  int(n == 0)))
                customer_addresses.setdefault(cid, []).append(aid)
        conn.executemany("INSERT INTO address VALUES (?, ?, ?, ?, ?, ?, ?)", addresses)

        conn.executemany("INSERT INTO department VALUES (?, ?, NULL)",
                         [(i + 1, name) for i, name in enumerate(DEPARTMENTS)])
        employees = []
        for eid in range(1, counts["employee"] + 1):
            first, last = fake.first_name(), fake.last_name()
            manager = None if eid <= len(DEPARTMENTS) else rng.randrange(1, eid)
            department = eid if eid <= len(DEPARTMENTS) else rng.randrange(1, len(DEPARTMENTS) + 1)
            employees.append((eid, first, last, f"{first}.{last}{eid}@shop.example".lower(), manager, department,
                              f"{rng.randrange(30_000, 140_000)}.00", fake.date_between("-12y", "-1m").isoformat()))
        conn.executemany("INSERT INTO employee VALUES (?, ?, ?, ?, ?, ?, ?, ?)", employees)
        conn.executemany("UPDATE department SET head_employee_id = ? WHERE department_id = ?",
                         [(i + 1, i + 1) for i in range(len(DEPARTMENTS))])

        categories = ["books", "garden", "kitchen", "toys", "sports", "office"]
        products = [(pid, f"SKU-{pid:06d}", fake.catch_phrase(), rng.choice(categories),
                     f"{rng.randrange(100, 50_000) / 100:.2f}") for pid in range(1, counts["product"] + 1)]
        conn.executemany("INSERT INTO product VALUES (?, ?, ?, ?, ?)", products)

        orders: list[tuple[object, ...]] = []
        items: list[tuple[object, ...]] = []
        payments: list[tuple[object, ...]] = []
        statuses = ["new", "paid", "shipped", "cancelled"]
        for oid in range(1, counts["orders"] + 1):
            cid = rng.randrange(1, counts["customer"] + 1)
            rep = rng.randrange(1, counts["employee"] + 1) if rng.random() < 0.7 else None
            addr = rng.choice(customer_addresses[cid]) if rng.random() < 0.95 else None
            ship_email = emails[cid - 1] if rng.random() < 0.9 else f"gift{oid}@example.net"
            when = start + dt.timedelta(minutes=rng.randrange(3_000_000))
            status = rng.choice(statuses)
            orders.append((oid, cid, rep, addr, ship_email, status, when.isoformat(sep=" ")))
            total = 0.0
            for line in range(1, rng.randrange(1, 5) + 1):
                pid = rng.randrange(1, counts["product"] + 1)
                qty = rng.randrange(1, 4)
                price = float(products[pid - 1][4])
                total += qty * price
                items.append((oid, line, pid, qty, f"{price:.2f}"))
            if status != "new":
                holder = " ".join(customers[cid - 1][1:3])
                payments.append((len(payments) + 1, oid, holder, _card(rng), f"{total:.2f}",
                                 (when + dt.timedelta(minutes=rng.randrange(1, 600))).isoformat(sep=" ")))
        conn.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?)", orders)
        conn.executemany("INSERT INTO order_item VALUES (?, ?, ?, ?, ?)", items)
        conn.executemany("INSERT INTO payment VALUES (?, ?, ?, ?, ?, ?)", payments)

        tickets = []
        for tid in range(1, counts["support_ticket"] + 1):
            cid = rng.randrange(1, counts["customer"] + 1)
            phone = phones[cid - 1] or _phone(rng)
            body = (f"Hello, this is {customers[cid - 1][1]}. {fake.sentence()} Please reply to "
                    f"{emails[cid - 1]} or call me on {phone}. {fake.sentence()}")
            tickets.append((tid, cid, rng.randrange(1, counts["employee"] + 1) if rng.random() < 0.8 else None,
                            rng.choice(TOPICS), body, rng.choice(["open", "pending", "closed"]),
                            (start + dt.timedelta(minutes=rng.randrange(3_000_000))).isoformat(sep=" ")))
        conn.executemany("INSERT INTO support_ticket VALUES (?, ?, ?, ?, ?, ?, ?)", tickets)

        pages = ["/", "/cart", "/checkout", "/account", "/search", "/help"] + [f"/product/{i}" for i in range(1, 50)]
        views = [(rng.randrange(1, counts["customer"] + 1) if rng.random() < 0.85 else None, rng.choice(pages),
                  f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
                  (start + dt.timedelta(seconds=rng.randrange(180_000_000))).isoformat(sep=" "))
                 for _ in range(counts["page_view"])]
        conn.executemany("INSERT INTO page_view VALUES (?, ?, ?, ?)", views)

        conn.executemany("INSERT INTO app_settings VALUES (?, ?)", [
            ("payment_gateway_url", "https://payments.example.com/live"), ("feature.new_checkout", "on"),
            ("support_email", "support@shop.example"),
        ])
        actions = ["login", "update_customer", "refund", "export", "delete_address"]
        logs = [(i, rng.choice(employees)[3], rng.choice(actions), f"customer {rng.randrange(1, counts['customer'])}",
                 (start + dt.timedelta(minutes=rng.randrange(3_000_000))).isoformat(sep=" "))
                for i in range(1, counts["audit_log"] + 1)]
        conn.executemany("INSERT INTO audit_log VALUES (?, ?, ?, ?, ?)", logs)
        conn.commit()
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        return {t: conn.execute(f"SELECT count(*) FROM {quote_identifier(SQLITE, t)}").fetchone()[0] for t in tables}
    finally:
        conn.close()


def build_demo(directory: Path, scale: int = 1, seed: int = 42, force: bool = True) -> DemoResult:
    """Create the demo project in ``directory``: prod.db, datastage.yaml, rules/pii.yaml, masking.key.

    An existing masking key is kept (so earlier reports stay verifiable); everything else
    is rewritten.
    """
    if scale < 1:
        raise UsageError("--scale must be at least 1")
    directory.mkdir(parents=True, exist_ok=True)
    if not force and (directory / "datastage.yaml").exists():
        raise UsageError(f"{directory} already holds a project (datastage.yaml)")
    database = directory / "prod.db"
    rows = build_database(database, scale=scale, seed=seed)
    config = directory / "datastage.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    rules = directory / "rules" / "pii.yaml"
    rules.parent.mkdir(exist_ok=True)
    rules.write_text(RULES, encoding="utf-8")
    (directory / ".gitignore").write_text(GITIGNORE, encoding="utf-8")
    key_file = directory / "masking.key"
    if not key_file.exists():
        write_key_file(key_file)
    signing_key = directory / "signing.key"
    if not signing_key.exists():
        write_signing_key(signing_key)
    return DemoResult(directory, database, config, rules, key_file, rows)
