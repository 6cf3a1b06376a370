"""A trading company in the style of Northwind: customers and suppliers that are companies, employees.

What it reproduces: business contacts (``ContactName``, ``ContactTitle``) inside company
rows whose own name, address and switchboard are not personal data; five-letter customer
codes (``ALFKI``); employees with ``BirthDate``, ``HomePhone``, an ``Extension``, a photo,
a ``PhotoPath`` URL that carries the surname and ``Notes`` that tell their life story by
name; category pictures (images of products, not people); suppliers' ``HomePage``;
``Region`` codes beside given names; orders with ``Ship*`` address columns.

Example:
    >>> specs = tables(seed=1)
    >>> customers = next(t for t in specs if t.name == "Customers")
    >>> len(customers.rows["CustomerID"][0])
    5
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import sqlalchemy as sa
from corpus_kit import KEY, Col, D, N, Q, Rows, Table, faker, letters, pick

STYLE = "trading company (Northwind-like)"
TXT = sa.String(60)
COMPANY_ADDR = N("a company's address", alt=("D", "Q"))
COMPANY_PHONE = N("a company's switchboard or fax", alt=("D",))

CATEGORIES = [("Beverages", "Soft drinks, coffees, teas, beers, and ales"),
              ("Condiments", "Sweet and savory sauces, relishes, spreads, and seasonings"),
              ("Confections", "Desserts, candies, and sweet breads"), ("Dairy Products", "Cheeses"),
              ("Grains/Cereals", "Breads, crackers, pasta, and cereal"), ("Meat/Poultry", "Prepared meats"),
              ("Produce", "Dried fruit and bean curd"), ("Seafood", "Seaweed and fish")]
TITLES = ["Sales Representative", "Owner", "Order Administrator", "Marketing Manager", "Accounting Manager",
          "Sales Agent", "Sales Associate", "Marketing Assistant", "Purchasing Manager", "Export Administrator"]
COUNTRIES = ["Germany", "Mexico", "UK", "Sweden", "France", "Spain", "Canada", "Argentina", "Switzerland", "Brazil",
             "Austria", "Italy", "Portugal", "USA", "Venezuela", "Ireland", "Belgium", "Norway", "Denmark", "Finland"]
REGIONS = ["WA", "OR", "CA", "BC", "SP", "RJ", "NM", "ID", "AK", "MT", "WY", "Táchira", "Lara", "Isle of Wight",
           "Co. Cork", "Québec", "Nueva Esparta", "DF"]
FOODS = ["Chai", "Chang", "Aniseed Syrup", "Chef Anton's Cajun Seasoning", "Grandma's Boysenberry Spread",
         "Uncle Bob's Organic Dried Pears", "Northwoods Cranberry Sauce", "Mishi Kobe Niku", "Ikura", "Queso Cabrales",
         "Konbu", "Tofu", "Genen Shouyu", "Pavlova", "Alice Mutton", "Carnarvon Tigers", "Teatime Chocolate Biscuits",
         "Sir Rodney's Marmalade", "Gustaf's Knäckebröd", "Tunnbröd", "Guaraná Fantástica", "Gumbär Gummibärchen",
         "Schoggi Schokolade", "Rössle Sauerkraut", "Thüringer Rostbratwurst", "Nord-Ost Matjeshering",
         "Gorgonzola Telino", "Mascarpone Fabioli", "Geitost", "Sasquatch Ale", "Steeleye Stout", "Inlagd Sill"]
NOTE_TEMPLATES = [
    "Education includes a BA in {subject} from {school} in {year}. {she} also completed \"The Art of the Cold Call.\" "
    "{first} is a member of Toastmasters International.",
    "{first} {last} graduated from {school} with a degree in {subject}. {she} joined the company as a sales "
    "representative and was promoted in {year}.",
    "{first} has a BA degree in {subject} from {school} ({year}). {she} is fluent in French and German.",
    "{first} {last} served in the Navy, then joined the company. {she} can be reached at home on {phone}.",
]
SUBJECTS = ["psychology", "English literature", "chemistry", "economics", "French", "history"]


def tables(seed: int = 17, customers: int = 120, employees: int = 30, orders: int = 500) -> list[Table]:
    """The trading-company database."""
    fake = faker(seed, ["en_US", "de_DE", "fr_FR", "es_ES", "sv_SE"])
    rng = random.Random(seed)

    categories: Rows = {"CategoryID": list(range(1, len(CATEGORIES) + 1)),
                        "CategoryName": [c[0] for c in CATEGORIES], "Description": [c[1] for c in CATEGORIES],
                        "Picture": [bytes(rng.getrandbits(8) for _ in range(64)) for _ in CATEGORIES]}
    codes: list[str] = []
    companies = []
    while len(codes) < customers:
        company = fake.company()
        code = (company.replace(" ", "").replace(",", "").replace("-", "").upper() + letters(rng, 5))[:5]
        if code not in codes and code.isalpha():
            codes.append(code)
            companies.append(company)
    cust_country = pick(rng, COUNTRIES, customers)
    customer_rows: Rows = {
        "CustomerID": codes,
        "CompanyName": companies,
        "ContactName": [fake.name() for _ in codes],
        "ContactTitle": pick(rng, TITLES, customers),
        "Address": [fake.street_address() for _ in codes],
        "City": [fake.city() for _ in codes],
        "Region": [rng.choice(REGIONS) if rng.random() < 0.35 else None for _ in codes],
        "PostalCode": [fake.postcode() if rng.random() < 0.95 else None for _ in codes],
        "Country": cust_country,
        "Phone": [fake.phone_number() for _ in codes],
        "Fax": [fake.phone_number() if rng.random() < 0.6 else None for _ in codes],
    }
    emp_ids = list(range(1, employees + 1))
    female = [rng.random() < 0.5 for _ in emp_ids]
    e_first = [fake.first_name_female() if f else fake.first_name_male() for f in female]
    e_last = [fake.last_name() for _ in emp_ids]
    home_phone = [fake.phone_number() for _ in emp_ids]
    employee_rows: Rows = {
        "EmployeeID": emp_ids,
        "LastName": e_last,
        "FirstName": e_first,
        "Title": pick(rng, ["Sales Representative", "Vice President, Sales", "Sales Manager",
                            "Inside Sales Coordinator"], employees, weights=[70, 5, 15, 10]),
        "TitleOfCourtesy": [rng.choice(["Ms.", "Mrs."]) if f else rng.choice(["Mr.", "Dr."]) for f in female],
        "BirthDate": [datetime(1937, 1, 1) + timedelta(days=rng.randint(0, 30 * 365)) for _ in emp_ids],
        "HireDate": [datetime(1992, 1, 1) + timedelta(days=rng.randint(0, 3 * 365)) for _ in emp_ids],
        "Address": [fake.street_address() for _ in emp_ids],
        "City": [fake.city() for _ in emp_ids],
        "Region": [rng.choice(["WA", "OR", None]) for _ in emp_ids],
        "PostalCode": [fake.postcode() for _ in emp_ids],
        "Country": pick(rng, ["USA", "UK"], employees),
        "HomePhone": home_phone,
        "Extension": [str(rng.randint(100, 9999)) for _ in emp_ids],
        "Photo": [bytes(rng.getrandbits(8) for _ in range(64)) for _ in emp_ids],
        "Notes": [rng.choice(NOTE_TEMPLATES).format(
            first=f, last=la, she="She" if fem else "He", subject=rng.choice(SUBJECTS),
            school=f"{fake.last_name()} {rng.choice(['University', 'College', 'State University'])}",
            year=rng.randint(1958, 1990), phone=hp) for f, la, fem, hp in zip(e_first, e_last, female, home_phone)],
        "ReportsTo": [None] + [rng.randint(1, max(1, i)) for i in range(1, employees)],
        "PhotoPath": [f"http://accweb/emmployees/{la.lower().replace(' ', '')}.bmp" for la in e_last],
    }
    shippers: Rows = {"ShipperID": [1, 2, 3], "CompanyName": ["Speedy Express", "United Package", "Federal Shipping"],
                      "Phone": ["(503) 555-9831", "(503) 555-3199", "(503) 555-9931"]}
    n_sup = 29
    suppliers: Rows = {
        "SupplierID": list(range(1, n_sup + 1)),
        "CompanyName": [fake.company() for _ in range(n_sup)],
        "ContactName": [fake.name() for _ in range(n_sup)],
        "ContactTitle": pick(rng, TITLES, n_sup),
        "Address": [fake.street_address() for _ in range(n_sup)],
        "City": [fake.city() for _ in range(n_sup)],
        "Region": [rng.choice(REGIONS) if rng.random() < 0.3 else None for _ in range(n_sup)],
        "PostalCode": [fake.postcode() for _ in range(n_sup)],
        "Country": pick(rng, COUNTRIES, n_sup),
        "Phone": [fake.phone_number() for _ in range(n_sup)],
        "Fax": [fake.phone_number() if rng.random() < 0.4 else None for _ in range(n_sup)],
        "HomePage": [f"{fake.company()}#http://www.{fake.domain_word()}.example/#" if rng.random() < 0.3 else None
                     for _ in range(n_sup)],
    }
    n_prod = len(FOODS)
    products: Rows = {
        "ProductID": list(range(1, n_prod + 1)), "ProductName": FOODS,
        "SupplierID": pick(rng, suppliers["SupplierID"], n_prod),
        "CategoryID": pick(rng, categories["CategoryID"], n_prod),
        "QuantityPerUnit": [f"{rng.randint(1, 48)} - {rng.choice([12, 250, 500, 550])} {rng.choice(['g', 'ml', 'oz'])}"
                            f" {rng.choice(['bottles', 'boxes', 'jars', 'pkgs.'])}" for _ in range(n_prod)],
        "UnitPrice": [round(rng.uniform(2.5, 263.5), 2) for _ in range(n_prod)],
        "UnitsInStock": [rng.randint(0, 125) for _ in range(n_prod)],
        "UnitsOnOrder": [rng.choice([0, 0, 10, 40, 70]) for _ in range(n_prod)],
        "ReorderLevel": [rng.choice([0, 5, 10, 15, 25, 30]) for _ in range(n_prod)],
        "Discontinued": [rng.random() < 0.1 for _ in range(n_prod)],
    }
    ord_ids = list(range(10248, 10248 + orders))
    ord_cust = pick(rng, range(customers), orders)
    dates = [datetime(1996, 7, 4) + timedelta(days=rng.randint(0, 670)) for _ in ord_ids]
    order_rows: Rows = {
        "OrderID": ord_ids,
        "CustomerID": [codes[c] for c in ord_cust],
        "EmployeeID": pick(rng, emp_ids, orders),
        "OrderDate": dates,
        "RequiredDate": [d + timedelta(days=28) for d in dates],
        "ShippedDate": [d + timedelta(days=rng.randint(1, 30)) if rng.random() < 0.95 else None for d in dates],
        "ShipVia": pick(rng, [1, 2, 3], orders),
        "Freight": [round(rng.uniform(0.02, 1007.64), 2) for _ in ord_ids],
        "ShipName": [companies[c] for c in ord_cust],
        "ShipAddress": [customer_rows["Address"][c] for c in ord_cust],
        "ShipCity": [customer_rows["City"][c] for c in ord_cust],
        "ShipRegion": [customer_rows["Region"][c] for c in ord_cust],
        "ShipPostalCode": [customer_rows["PostalCode"][c] for c in ord_cust],
        "ShipCountry": [customer_rows["Country"][c] for c in ord_cust],
    }
    pairs = sorted({(rng.choice(ord_ids), rng.randint(1, n_prod)) for _ in range(1200)})
    details: Rows = {
        "OrderID": [p[0] for p in pairs], "ProductID": [p[1] for p in pairs],
        "UnitPrice": [round(rng.uniform(2, 263.5), 2) for _ in pairs],
        "Quantity": [rng.randint(1, 120) for _ in pairs],
        "Discount": [rng.choice([0, 0, 0, 0.05, 0.1, 0.15, 0.2, 0.25]) for _ in pairs],
    }
    regions: Rows = {"RegionID": [1, 2, 3, 4], "RegionDescription": ["Eastern", "Western", "Northern", "Southern"]}
    territory_names = [fake.city() for _ in range(53)]
    territories: Rows = {"TerritoryID": [f"{rng.randint(1, 9)}{i:04d}" for i in range(53)],
                         "TerritoryDescription": territory_names, "RegionID": pick(rng, [1, 2, 3, 4], 53)}
    et_pairs = sorted({(rng.choice(emp_ids), rng.choice(territories["TerritoryID"])) for _ in range(60)})
    employee_territories: Rows = {"EmployeeID": [p[0] for p in et_pairs], "TerritoryID": [p[1] for p in et_pairs]}
    company = N("a company's name")
    contact_title = N("a business role", alt=("Q",))

    return [
        Table("Categories", [
            Col("CategoryID", sa.Integer, KEY, pk=True), Col("CategoryName", sa.String(15), N("a category")),
            Col("Description", sa.Text, N("catalogue text")),
            Col("Picture", sa.LargeBinary, N("a picture of products, not of a person")),
        ], categories),
        Table("Customers", [
            Col("CustomerID", sa.String(5), N("a company's code"), pk=True),
            Col("CompanyName", sa.String(40), company),
            Col("ContactName", sa.String(30), D("full_name", why="a business contact: a person")),
            Col("ContactTitle", sa.String(30), contact_title),
            Col("Address", TXT, COMPANY_ADDR), Col("City", sa.String(15), COMPANY_ADDR),
            Col("Region", sa.String(15), N("a region code")), Col("PostalCode", sa.String(10), COMPANY_ADDR),
            Col("Country", sa.String(15), N("a country")),
            Col("Phone", sa.String(24), COMPANY_PHONE), Col("Fax", sa.String(24), COMPANY_PHONE),
        ], customer_rows),
        Table("Employees", [
            Col("EmployeeID", sa.Integer, KEY, pk=True),
            Col("LastName", sa.String(20), D("last_name")), Col("FirstName", sa.String(10), D("first_name")),
            Col("Title", sa.String(30), N("a job title", alt=("Q",))),
            Col("TitleOfCourtesy", sa.String(25), Q("gender", alt=("N",), why="Ms./Mr. states gender")),
            Col("BirthDate", sa.DateTime, Q("date_of_birth")),
            Col("HireDate", sa.DateTime, Q("event_date", why="a date in an employee's working life")),
            Col("Address", TXT, D("street_address")), Col("City", sa.String(15), Q("city")),
            Col("Region", sa.String(15), N("a state or region code")),
            Col("PostalCode", sa.String(10), Q("postcode")), Col("Country", sa.String(15), N("a country")),
            Col("HomePhone", sa.String(24), D("phone")),
            Col("Extension", sa.String(4), Q("phone", alt=("D", "N"), why="an office extension")),
            Col("Photo", sa.LargeBinary, D("photo")),
            Col("Notes", sa.Text, D("free_text", why="a life story, by name")),
            Col("ReportsTo", sa.Integer, KEY, fk="Employees.EmployeeID"),
            Col("PhotoPath", sa.String(255), D("url", "photo", why="the photo's address carries the surname")),
        ], employee_rows),
        Table("Shippers", [Col("ShipperID", sa.Integer, KEY, pk=True), Col("CompanyName", sa.String(40), company),
                           Col("Phone", sa.String(24), COMPANY_PHONE)], shippers),
        Table("Suppliers", [
            Col("SupplierID", sa.Integer, KEY, pk=True), Col("CompanyName", sa.String(40), company),
            Col("ContactName", sa.String(30), D("full_name", why="a business contact: a person")),
            Col("ContactTitle", sa.String(30), contact_title),
            Col("Address", TXT, COMPANY_ADDR), Col("City", sa.String(15), COMPANY_ADDR),
            Col("Region", sa.String(15), N("a region code")), Col("PostalCode", sa.String(10), COMPANY_ADDR),
            Col("Country", sa.String(15), N("a country")),
            Col("Phone", sa.String(24), COMPANY_PHONE), Col("Fax", sa.String(24), COMPANY_PHONE),
            Col("HomePage", sa.Text, N("a company's web site")),
        ], suppliers),
        Table("Products", [
            Col("ProductID", sa.Integer, KEY, pk=True), Col("ProductName", sa.String(40), N("a product")),
            Col("SupplierID", sa.Integer, KEY, fk="Suppliers.SupplierID"),
            Col("CategoryID", sa.Integer, KEY, fk="Categories.CategoryID"),
            Col("QuantityPerUnit", sa.String(20), N("a pack size")), Col("UnitPrice", sa.Numeric(10, 2), N("a price")),
            Col("UnitsInStock", sa.Integer, N("a count")), Col("UnitsOnOrder", sa.Integer, N("a count")),
            Col("ReorderLevel", sa.Integer, N("a count")), Col("Discontinued", sa.Boolean, N("a flag")),
        ], products),
        Table("Orders", [
            Col("OrderID", sa.Integer, KEY, pk=True),
            Col("CustomerID", sa.String(5), N("a company's code"), fk="Customers.CustomerID"),
            Col("EmployeeID", sa.Integer, KEY, fk="Employees.EmployeeID"),
            Col("OrderDate", sa.DateTime, N("the date of a sale", alt=("Q",))),
            Col("RequiredDate", sa.DateTime, N("a delivery date")),
            Col("ShippedDate", sa.DateTime, N("a delivery date")),
            Col("ShipVia", sa.Integer, KEY, fk="Shippers.ShipperID"), Col("Freight", sa.Numeric(10, 2), N("a cost")),
            Col("ShipName", sa.String(40), N("the receiving company's name", alt=("D",))),
            Col("ShipAddress", TXT, COMPANY_ADDR), Col("ShipCity", sa.String(15), COMPANY_ADDR),
            Col("ShipRegion", sa.String(15), N("a region code")), Col("ShipPostalCode", sa.String(10), COMPANY_ADDR),
            Col("ShipCountry", sa.String(15), N("a country")),
        ], order_rows),
        Table("Order Details", [
            Col("OrderID", sa.Integer, KEY, pk=True, fk="Orders.OrderID"),
            Col("ProductID", sa.Integer, KEY, pk=True, fk="Products.ProductID"),
            Col("UnitPrice", sa.Numeric(10, 2), N("a price")), Col("Quantity", sa.Integer, N("a count")),
            Col("Discount", sa.Float, N("a rate")),
        ], details),
        Table("Region", [Col("RegionID", sa.Integer, KEY, pk=True),
                         Col("RegionDescription", sa.String(50), N("a sales region"))], regions),
        Table("Territories", [
            Col("TerritoryID", sa.String(20), N("a territory code"), pk=True),
            Col("TerritoryDescription", sa.String(50), N("a sales territory: a city's name")),
            Col("RegionID", sa.Integer, KEY, fk="Region.RegionID"),
        ], territories),
        Table("EmployeeTerritories", [
            Col("EmployeeID", sa.Integer, KEY, pk=True, fk="Employees.EmployeeID"),
            Col("TerritoryID", sa.String(20), N("a territory code"), pk=True, fk="Territories.TerritoryID"),
        ], employee_territories),
    ]
