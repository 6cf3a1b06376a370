"""HR and orders in two schemas, in the style of Oracle's HR and OE samples: ``hr`` and ``sales``.

What it reproduces: an ``email`` column holding user ids (``SKING``) rather than addresses;
phones in dotted form (``515.123.4567``); salary ranges of *jobs* (not of people) beside
salaries of employees; office addresses (an organisation's, not a person's); customers with
``cust_`` prefixed names and ``billing_``/``ship_`` prefixed address columns; emergency
contacts' names and phones; a product catalogue with URLs; two-letter country codes. On
PostgreSQL the tables live in the schemas ``hr`` and ``sales``; on SQLite and MariaDB in one
database.

Example:
    >>> specs = tables(seed=1, schemas=True)
    >>> sorted({t.schema for t in specs})
    ['hr', 'sales']
    >>> employees = next(t for t in specs if t.name == "employees")
    >>> employees.rows["email"][0].isupper()
    True
"""

from __future__ import annotations

import random
from datetime import date, timedelta

import sqlalchemy as sa
from corpus_kit import KEY, Col, D, N, Q, Rows, S, Table, faker, pick

STYLE = "HR and orders, two schemas (Oracle HR/OE-like)"
TXT = sa.String(120)
OFFICE = N("an office's address: the organisation's, not a person's", alt=("D", "Q"))
EVENT = Q("event_date", why="a date in an employee's working life")

REGIONS = ["Europe", "Americas", "Asia", "Middle East and Africa"]
COUNTRIES = [("US", "United States of America", 2), ("CA", "Canada", 2), ("UK", "United Kingdom", 1),
             ("DE", "Germany", 1), ("FR", "France", 1), ("IN", "India", 3), ("JP", "Japan", 3),
             ("BR", "Brazil", 2), ("AU", "Australia", 3), ("EG", "Egypt", 4)]
JOBS = [("AD_PRES", "President", 20080, 40000), ("AD_VP", "Administration Vice President", 15000, 30000),
        ("IT_PROG", "Programmer", 4000, 10000), ("FI_ACCOUNT", "Accountant", 4200, 9000),
        ("SA_MAN", "Sales Manager", 10000, 20080), ("SA_REP", "Sales Representative", 6000, 12008),
        ("ST_CLERK", "Stock Clerk", 2008, 5000), ("HR_REP", "Human Resources Representative", 4000, 9000),
        ("MK_MAN", "Marketing Manager", 9000, 15000), ("PU_CLERK", "Purchasing Clerk", 2500, 5500)]
DEPARTMENTS = ["Administration", "Marketing", "Purchasing", "Human Resources", "Shipping", "IT", "Public Relations",
               "Sales", "Executive", "Finance", "Accounting", "Treasury"]
RELATIONS = ["spouse", "parent", "sibling", "partner", "friend", "child"]
INCOME_LEVELS = ["A: Below 30,000", "B: 30,000 - 49,999", "C: 50,000 - 69,999", "D: 70,000 - 89,999",
                 "E: 90,000 - 109,999", "F: 110,000 - 129,999", "G: 130,000 - 149,999", "H: 150,000 - 169,999"]
CATEGORIES = ["hardware", "software", "office supplies", "peripherals", "networking"]
PRODUCT_WORDS = ["Monitor", "Keyboard", "Mouse", "Laptop", "Docking Station", "Printer", "Router", "Cable", "Headset",
                 "Webcam", "Hub", "Scanner", "Projector", "Tablet", "Speaker"]


def _dotted(rng: random.Random, international: bool = False) -> str:
    if international:
        return f"011.44.{rng.randint(1000, 1999)}.{rng.randint(100000, 999999)}"
    return f"{rng.choice([515, 590, 603, 650])}.{rng.randint(100, 999)}.{rng.randint(1000, 9999)}"


def tables(seed: int = 15, schemas: bool = False, employees: int = 200, customers: int = 300) -> list[Table]:
    """The HR + orders database (``schemas``: in schemas ``hr`` and ``sales``, else in one schema)."""
    fake = faker(seed)
    rng = random.Random(seed)
    hr = "hr" if schemas else None
    sales = "sales" if schemas else None

    regions: Rows = {"region_id": list(range(1, len(REGIONS) + 1)), "region_name": REGIONS}
    countries: Rows = {"country_id": [c[0] for c in COUNTRIES], "country_name": [c[1] for c in COUNTRIES],
                       "region_id": [c[2] for c in COUNTRIES]}
    n_loc = 23
    locations: Rows = {
        "location_id": [1000 + 100 * i for i in range(n_loc)],
        "street_address": [fake.street_address() for _ in range(n_loc)],
        "postal_code": [fake.postcode() for _ in range(n_loc)],
        "city": [fake.city() for _ in range(n_loc)],
        "state_province": [fake.state() if rng.random() < 0.7 else None for _ in range(n_loc)],
        "country_id": pick(rng, [c[0] for c in COUNTRIES], n_loc),
    }
    jobs: Rows = {"job_id": [j[0] for j in JOBS], "job_title": [j[1] for j in JOBS],
                  "min_salary": [j[2] for j in JOBS], "max_salary": [j[3] for j in JOBS]}
    dept_ids = [10 * (i + 1) for i in range(len(DEPARTMENTS))]
    emp_ids = list(range(100, 100 + employees))
    firsts = [fake.first_name() for _ in emp_ids]
    lasts = [fake.last_name() for _ in emp_ids]
    emails: list[str] = []
    for f, la in zip(firsts, lasts):
        handle = (f[0] + la).upper().replace(" ", "").replace("'", "")[:8]
        while handle in emails:
            handle = handle[:7] + str(rng.randint(0, 9))
        emails.append(handle)
    hires = [date(1995, 1, 1) + timedelta(days=rng.randint(0, 27 * 365)) for _ in emp_ids]
    job_of = pick(rng, range(len(JOBS)), employees)
    employee_rows: Rows = {
        "employee_id": emp_ids,
        "first_name": firsts,
        "last_name": lasts,
        "email": emails,
        "phone_number": [_dotted(rng, rng.random() < 0.2) for _ in emp_ids],
        "hire_date": hires,
        "job_id": [JOBS[j][0] for j in job_of],
        "salary": [round(rng.uniform(JOBS[j][2], JOBS[j][3]), -1) for j in job_of],
        "commission_pct": [round(rng.choice([0.1, 0.15, 0.2, 0.25, 0.3]), 2) if JOBS[j][0].startswith("SA")
                           else None for j in job_of],
        "manager_id": [None] + [rng.choice(emp_ids[: max(1, i)]) for i in range(1, employees)],
        "department_id": pick(rng, dept_ids, employees),
        "emergency_contact_name": [fake.name() if rng.random() < 0.85 else None for _ in emp_ids],
        "emergency_contact_phone": [fake.phone_number() if rng.random() < 0.85 else None for _ in emp_ids],
        "emergency_contact_relation": pick(rng, RELATIONS, employees),
    }
    departments: Rows = {"department_id": dept_ids, "department_name": DEPARTMENTS,
                         "manager_id": pick(rng, emp_ids, len(dept_ids)),
                         "location_id": pick(rng, locations["location_id"], len(dept_ids))}
    n_hist = 120
    hist_emp = rng.sample(range(employees), n_hist)
    starts = [hires[e] - timedelta(days=rng.randint(400, 3000)) for e in hist_emp]
    job_history: Rows = {
        "employee_id": [emp_ids[e] for e in hist_emp],
        "start_date": starts,
        "end_date": [hires[e] - timedelta(days=1) for e in hist_emp],
        "job_id": pick(rng, [j[0] for j in JOBS], n_hist),
        "department_id": pick(rng, dept_ids, n_hist),
    }

    cust_ids = list(range(101, 101 + customers))
    c_first = [fake.first_name() for _ in cust_ids]
    c_last = [fake.last_name() for _ in cust_ids]
    same_ship = [rng.random() < 0.6 for _ in cust_ids]
    billing_street = [fake.street_address() for _ in cust_ids]
    billing_city = [fake.city() for _ in cust_ids]
    billing_state = [fake.state_abbr() for _ in cust_ids]
    billing_zip = [fake.zipcode() for _ in cust_ids]
    customer_rows: Rows = {
        "customer_id": cust_ids,
        "cust_first_name": c_first,
        "cust_last_name": c_last,
        "cust_email": [f"{f}.{la}@{fake.free_email_domain()}".lower().replace(" ", "") for f, la in
                       zip(c_first, c_last)],
        "phone_numbers": [f"+1 {fake.msisdn()[3:6]} {fake.msisdn()[6:9]} {fake.msisdn()[9:13]}" for _ in cust_ids],
        "date_of_birth": [date(1940, 1, 1) + timedelta(days=rng.randint(0, 60 * 365)) for _ in cust_ids],
        "marital_status": pick(rng, ["single", "married", "divorced", "widowed"], customers),
        "gender": pick(rng, ["M", "F"], customers),
        "income_level": pick(rng, INCOME_LEVELS, customers),
        "credit_limit": [rng.choice([500, 1000, 1500, 2000, 3000, 5000]) for _ in cust_ids],
        "nls_language": pick(rng, ["us", "uk", "fr", "de", "it", "es"], customers),
        "account_mgr_id": pick(rng, emp_ids, customers),
        "billing_street": billing_street,
        "billing_city": billing_city,
        "billing_state": billing_state,
        "billing_postal_code": billing_zip,
        "billing_country": pick(rng, ["US"] * 8 + ["CA"], customers),
        "ship_street": [b if s else fake.street_address() for b, s in zip(billing_street, same_ship)],
        "ship_city": [b if s else fake.city() for b, s in zip(billing_city, same_ship)],
        "ship_state": [b if s else fake.state_abbr() for b, s in zip(billing_state, same_ship)],
        "ship_postal_code": [b if s else fake.zipcode() for b, s in zip(billing_zip, same_ship)],
    }
    n_prod = 60
    prod_ids = list(range(1700, 1700 + n_prod))
    names = [f"{rng.choice(['Pro', 'Ultra', 'Basic', 'Smart', 'Eco'])} {rng.choice(PRODUCT_WORDS)} "
             f"{rng.randint(100, 999)}" for _ in prod_ids]
    products: Rows = {
        "product_id": prod_ids,
        "product_name": names,
        "product_description": [fake.sentence(nb_words=10) for _ in prod_ids],
        "category": pick(rng, CATEGORIES, n_prod),
        "weight_class": pick(rng, [1, 2, 3, 4, 5], n_prod),
        "list_price": [round(rng.uniform(5, 2500), 2) for _ in prod_ids],
        "min_price": [round(rng.uniform(3, 2000), 2) for _ in prod_ids],
        "catalog_url": [f"https://www.example.com/catalog/{n.lower().replace(' ', '-')}" for n in names],
    }
    promotions: Rows = {"promo_id": [1, 2, 3], "promo_name": ["everyday low price", "blowout sale", "spring clearance"]}
    n_ord = 500
    ord_ids = list(range(2354, 2354 + n_ord))
    orders: Rows = {
        "order_id": ord_ids,
        "order_date": [date(2021, 1, 1) + timedelta(days=rng.randint(0, 900)) for _ in ord_ids],
        "order_mode": pick(rng, ["direct", "online"], n_ord),
        "customer_id": pick(rng, cust_ids, n_ord),
        "order_status": pick(rng, range(0, 11), n_ord),
        "order_total": [round(rng.uniform(10, 50000), 2) for _ in ord_ids],
        "sales_rep_id": pick(rng, emp_ids, n_ord),
        "promotion_id": [rng.choice([1, 2, 3]) if rng.random() < 0.2 else None for _ in ord_ids],
    }
    n_items = 900
    order_items: Rows = {
        "order_id": pick(rng, ord_ids, n_items), "line_item_id": list(range(1, n_items + 1)),
        "product_id": pick(rng, prod_ids, n_items),
        "unit_price": [round(rng.uniform(5, 2500), 2) for _ in range(n_items)],
        "quantity": [rng.randint(1, 200) for _ in range(n_items)],
    }

    return [
        Table("regions", [Col("region_id", sa.Integer, KEY, pk=True), Col("region_name", TXT, N("a region"))],
              regions, hr),
        Table("countries", [Col("country_id", sa.String(2), N("a country code"), pk=True),
                            Col("country_name", TXT, N("a country")),
                            Col("region_id", sa.Integer, KEY, fk="regions.region_id")], countries, hr),
        Table("locations", [
            Col("location_id", sa.Integer, KEY, pk=True), Col("street_address", TXT, OFFICE),
            Col("postal_code", sa.String(12), OFFICE), Col("city", TXT, OFFICE),
            Col("state_province", TXT, N("a state or province")),
            Col("country_id", sa.String(2), N("a country code"), fk="countries.country_id"),
        ], locations, hr),
        Table("jobs", [
            Col("job_id", sa.String(10), N("a job code"), pk=True), Col("job_title", TXT, N("a job title")),
            Col("min_salary", sa.Integer, N("the salary band of a job, not a person's pay")),
            Col("max_salary", sa.Integer, N("the salary band of a job, not a person's pay")),
        ], jobs, hr),
        Table("employees", [
            Col("employee_id", sa.Integer, KEY, pk=True),
            Col("first_name", TXT, D("first_name")), Col("last_name", TXT, D("last_name")),
            Col("email", sa.String(25), D("email", "username", why="the mailbox name (SKING) without the domain"),
                unique=True),
            Col("phone_number", sa.String(25), D("phone", why="dotted: 515.123.4567, 011.44.1344.429268")),
            Col("hire_date", sa.Date, EVENT),
            Col("job_id", sa.String(10), N("a job code"), fk="jobs.job_id"),
            Col("salary", sa.Numeric(8, 2), S("financial")),
            Col("commission_pct", sa.Numeric(3, 2), S("financial")),
            Col("manager_id", sa.Integer, KEY, fk="employees.employee_id"),
            Col("department_id", sa.Integer, KEY),
            Col("emergency_contact_name", TXT, D("full_name")),
            Col("emergency_contact_phone", sa.String(30), D("phone")),
            Col("emergency_contact_relation", sa.String(10), N("spouse/parent/...: a category", alt=("Q",))),
        ], employee_rows, hr),
        Table("departments", [
            Col("department_id", sa.Integer, KEY, pk=True), Col("department_name", TXT, N("a department")),
            Col("manager_id", sa.Integer, KEY, fk="employees.employee_id"),
            Col("location_id", sa.Integer, KEY, fk="locations.location_id"),
        ], departments, hr),
        Table("job_history", [
            Col("employee_id", sa.Integer, KEY, fk="employees.employee_id", pk=True),
            Col("start_date", sa.Date, EVENT, pk=True), Col("end_date", sa.Date, EVENT),
            Col("job_id", sa.String(10), N("a job code"), fk="jobs.job_id"),
            Col("department_id", sa.Integer, KEY, fk="departments.department_id"),
        ], job_history, hr),
        Table("customers", [
            Col("customer_id", sa.Integer, KEY, pk=True),
            Col("cust_first_name", TXT, D("first_name")), Col("cust_last_name", TXT, D("last_name")),
            Col("cust_email", TXT, D("email")),
            Col("phone_numbers", sa.String(30), D("phone")),
            Col("date_of_birth", sa.Date, Q("date_of_birth")),
            Col("marital_status", sa.String(10), Q(alt=("N",), why="marital status (no kind in the taxonomy)")),
            Col("gender", sa.String(1), Q("gender")),
            Col("income_level", sa.String(30), S("financial")),
            Col("credit_limit", sa.Numeric(9, 2), S("financial", alt=("N",), why="a limit the shop grants a person")),
            Col("nls_language", sa.String(3), N("a language preference", alt=("Q",))),
            Col("account_mgr_id", sa.Integer, KEY),
            Col("billing_street", TXT, D("street_address")), Col("billing_city", TXT, Q("city")),
            Col("billing_state", sa.String(2), N("a two-letter state code: HIPAA Safe Harbor keeps states")),
            Col("billing_postal_code", sa.String(10), Q("postcode")),
            Col("billing_country", sa.String(2), N("a country code")),
            Col("ship_street", TXT, D("street_address")), Col("ship_city", TXT, Q("city")),
            Col("ship_state", sa.String(2), N("a two-letter state code: HIPAA Safe Harbor keeps states")),
            Col("ship_postal_code", sa.String(10), Q("postcode")),
        ], customer_rows, sales),
        Table("products", [
            Col("product_id", sa.Integer, KEY, pk=True), Col("product_name", TXT, N("a product")),
            Col("product_description", sa.Text, N("catalogue text")), Col("category", sa.String(20), N("a category")),
            Col("weight_class", sa.Integer, N("a category")), Col("list_price", sa.Numeric(8, 2), N("a price")),
            Col("min_price", sa.Numeric(8, 2), N("a price")),
            Col("catalog_url", sa.String(200), N("a product page: a web address, not a person's")),
        ], products, sales),
        Table("promotions", [Col("promo_id", sa.Integer, KEY, pk=True), Col("promo_name", TXT, N("a promotion"))],
              promotions, sales),
        Table("orders", [
            Col("order_id", sa.Integer, KEY, pk=True),
            Col("order_date", sa.Date, N("the date of a sale", alt=("Q",))),
            Col("order_mode", sa.String(8), N("a category")),
            Col("customer_id", sa.Integer, KEY, fk="customers.customer_id"),
            Col("order_status", sa.Integer, N("a status code")),
            Col("order_total", sa.Numeric(10, 2), N("the amount of a sale")),
            Col("sales_rep_id", sa.Integer, KEY), Col("promotion_id", sa.Integer, KEY, fk="promotions.promo_id"),
        ], orders, sales),
        Table("order_items", [
            Col("order_id", sa.Integer, KEY, fk="orders.order_id"), Col("line_item_id", sa.Integer, KEY, pk=True),
            Col("product_id", sa.Integer, KEY, fk="products.product_id"),
            Col("unit_price", sa.Numeric(8, 2), N("a price")), Col("quantity", sa.Integer, N("a count")),
        ], order_items, sales),
    ]
