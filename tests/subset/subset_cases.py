"""The tricky schemas of the subset conformance suite, one :class:`Case` each.

Every case states its expected rows by hand (``expected``, values of the first column or of
the key columns) where they are short enough to check by eye; the naive oracle in
:mod:`subset_harness` checks every table of every case.
"""

from __future__ import annotations

from collections import Counter

from subset_harness import Case, Extracted, Row

INT_PK = ["id INTEGER NOT NULL", "PRIMARY KEY (id)"]


def _fk(cols: str, table: str, refs: str = "id") -> str:
    return f"FOREIGN KEY ({cols}) REFERENCES {table} ({refs})"


SELF_REFERENCE = Case(
    name="self_reference",
    tables={"employee": [*INT_PK, "manager_id INTEGER", "name VARCHAR(40)", _fk("manager_id", "employee")]},
    rows={"employee": ("id manager_id name", [
        (1, None, "ceo"), (2, 1, "vp a"), (3, 2, "dir a1"), (4, 2, "dir a2"), (5, 3, "mgr"), (6, 3, "mgr 2"),
        (7, 5, "dev"), (8, 1, "vp b"), (9, 8, "x"), (10, 4, "y"),
    ])},
    subset="roots: [{table: employee, where: 'id = 3'}]",
    root_match=[lambda r: r["id"] == 3],
    expected={"employee": {1, 2, 3, 5, 6, 7}},  # managers up, reports down, no siblings
)

CYCLE_TWO_TABLES = Case(
    name="cycle_store_staff",
    tables={
        "store": [*INT_PK, "manager_staff_id INTEGER NOT NULL", "name VARCHAR(20)",
                  _fk("manager_staff_id", "staff")],
        "staff": [*INT_PK, "store_id INTEGER NOT NULL", "name VARCHAR(20)", _fk("store_id", "store")],
        "customer": [*INT_PK, "store_id INTEGER NOT NULL", _fk("store_id", "store")],
    },
    rows={
        "store": ("id manager_staff_id name", [(1, 1, "north"), (2, 3, "south")]),
        "staff": ("id store_id name", [(1, 1, "ann"), (2, 1, "bob"), (3, 2, "cy"), (4, 2, "dee")]),
        "customer": ("id store_id", [(1, 1), (2, 1), (3, 2), (4, 2), (5, 2)]),
    },
    subset="roots: [{table: staff, where: 'id = 3'}]",
    root_match=[lambda r: r["id"] == 3],
    # staff 3 manages store 2 (its child), whose staff and customers follow; store 1 is untouched.
    expected={"staff": {3, 4}, "store": {2}, "customer": {3, 4, 5}},
)

CYCLE_PARENTS_ONLY = Case(
    name="cycle_parents_only",
    tables=CYCLE_TWO_TABLES.tables,
    rows=CYCLE_TWO_TABLES.rows,
    subset="roots: [{table: customer, where: 'id IN (1, 2)'}]",
    root_match=[lambda r: r["id"] in (1, 2)],
    expected={"customer": {1, 2}, "store": {1}, "staff": {1}},  # the manager, not bob
)

CYCLE_THREE_TABLES = Case(
    name="cycle_three_tables",
    tables={
        "a": [*INT_PK, "c_id INTEGER", _fk("c_id", "c")],
        "b": [*INT_PK, "a_id INTEGER NOT NULL", _fk("a_id", "a")],
        "c": [*INT_PK, "b_id INTEGER NOT NULL", _fk("b_id", "b")],
    },
    rows={
        "a": ("id c_id", [(1, None), (2, 1), (3, None), (4, 2)]),
        "b": ("id a_id", [(1, 1), (2, 2), (3, 3), (4, 4)]),
        "c": ("id b_id", [(1, 1), (2, 2), (3, 3), (4, 4)]),
    },
    subset="roots: [{table: b, where: 'id = 2'}]",
    root_match=[lambda r: r["id"] == 2],
    expected={"a": {1, 2, 4}, "b": {1, 2, 4}, "c": {1, 2, 4}},
)

COMPOSITE_KEYS = Case(
    name="composite_keys",
    tables={
        "orders": ["tenant VARCHAR(10) NOT NULL", "id INTEGER NOT NULL", "note VARCHAR(20)",
                   "PRIMARY KEY (tenant, id)"],
        "order_line": ["tenant VARCHAR(10) NOT NULL", "order_id INTEGER NOT NULL", "line INTEGER NOT NULL",
                       "qty INTEGER", "PRIMARY KEY (tenant, order_id, line)",
                       _fk("tenant, order_id", "orders", "tenant, id")],
        "shipment": [*INT_PK, "tenant VARCHAR(10)", "order_id INTEGER",
                     _fk("tenant, order_id", "orders", "tenant, id")],
    },
    rows={
        "orders": ("tenant id note", [("a", 1, "x"), ("a", 2, "y"), ("b", 1, "z"), ("b", 2, "w")]),
        "order_line": ("tenant order_id line qty", [("a", 1, 1, 5), ("a", 1, 2, 6), ("a", 2, 1, 7), ("b", 1, 1, 8),
                                                    ("b", 2, 1, 9), ("b", 2, 2, 10)]),
        "shipment": ("id tenant order_id", [(1, "a", 1), (2, "b", 1), (3, "a", None), (4, None, 2), (5, "b", 2)]),
    },
    subset="""
roots:
  - {table: orders, where: "tenant = 'b' AND id = 1"}
  - {table: shipment, where: "id IN (3, 4)"}
""",
    root_match=[lambda r: (r["tenant"], r["id"]) == ("b", 1), lambda r: r["id"] in (3, 4)],
    # partially NULL foreign keys (shipments 3, 4) reference nothing
    expected={"orders": {"b"}, "shipment": {2, 3, 4}},
)

UNIQUE_NOT_PK = Case(
    name="fk_to_unique_column",
    tables={
        "country": [*INT_PK, "code VARCHAR(3) NOT NULL", "name VARCHAR(20)", "UNIQUE (code)"],
        "city": [*INT_PK, "country_code VARCHAR(3)", "name VARCHAR(20)", _fk("country_code", "country", "code")],
    },
    rows={
        "country": ("id code name", [(1, "FRA", "France"), (2, "DEU", "Germany"), (3, "ITA", "Italy")]),
        "city": ("id country_code name", [(1, "FRA", "Paris"), (2, "FRA", "Lyon"), (3, "DEU", "Bonn"),
                                          (4, None, "Atlantis"), (5, "ITA", "Rome")]),
    },
    subset="""
roots:
  - {table: city, where: "id IN (1, 3, 4)"}
  - {table: country, where: "id = 3"}
""",
    root_match=[lambda r: r["id"] in (1, 3, 4), lambda r: r["id"] == 3],
    expected={"city": {1, 3, 4, 5}, "country": {1, 2, 3}},
)

SAME_PARENT_TWICE = Case(
    name="two_fks_to_one_parent",
    tables={
        "airport": [*INT_PK, "code VARCHAR(3) NOT NULL"],
        "flight": [*INT_PK, "origin_id INTEGER NOT NULL", "destination_id INTEGER NOT NULL",
                   _fk("origin_id", "airport"), _fk("destination_id", "airport")],
    },
    rows={
        "airport": ("id code", [(1, "CDG"), (2, "FRA"), (3, "FCO"), (4, "LHR")]),
        "flight": ("id origin_id destination_id", [(1, 1, 2), (2, 1, 2), (3, 3, 1), (4, 2, 3), (5, 4, 1)]),
    },
    subset="""
roots:
  - {table: flight, where: "id = 1"}
  - {table: airport, where: "id = 3"}
""",
    root_match=[lambda r: r["id"] == 1, lambda r: r["id"] == 3],
    expected={"flight": {1, 3, 4}, "airport": {1, 2, 3}},
)

DIAMOND = Case(
    name="diamond",
    tables={
        "top": [*INT_PK],
        "lft": [*INT_PK, "top_id INTEGER NOT NULL", _fk("top_id", "top")],
        "rgt": [*INT_PK, "top_id INTEGER NOT NULL", _fk("top_id", "top")],
        "bottom": [*INT_PK, "lft_id INTEGER NOT NULL", "rgt_id INTEGER NOT NULL", _fk("lft_id", "lft"),
                   _fk("rgt_id", "rgt")],
    },
    rows={
        "top": ("id", [(1,), (2,), (3,)]),
        "lft": ("id top_id", [(1, 1), (2, 2), (3, 3)]),
        "rgt": ("id top_id", [(1, 1), (2, 2), (3, 3)]),
        "bottom": ("id lft_id rgt_id", [(1, 1, 1), (2, 1, 2), (3, 2, 2), (4, 2, 1), (5, 3, 3)]),
    },
    subset="roots: [{table: top, where: 'id = 1'}]",
    root_match=[lambda r: r["id"] == 1],
    expected={"top": {1, 2}, "lft": {1, 2}, "rgt": {1, 2}, "bottom": {1, 2, 4}},
)

NULLABLE_FKS = Case(
    name="nullable_fks",
    tables={
        "coupon": [*INT_PK, "code VARCHAR(10)"],
        "customer": [*INT_PK, "referrer_id INTEGER", _fk("referrer_id", "customer")],
        "purchase": [*INT_PK, "customer_id INTEGER NOT NULL", "coupon_id INTEGER", _fk("customer_id", "customer"),
                     _fk("coupon_id", "coupon")],
    },
    rows={
        "coupon": ("id code", [(1, "TEN"), (2, "TWENTY"), (3, "UNUSED")]),
        "customer": ("id referrer_id", [(1, None), (2, 1), (3, None), (4, 3)]),
        "purchase": ("id customer_id coupon_id", [(1, 2, None), (2, 2, 1), (3, 1, None), (4, 3, 2), (5, 4, None)]),
    },
    subset="roots: [{table: customer, where: 'id = 2'}]",
    root_match=[lambda r: r["id"] == 2],
    expected={"customer": {1, 2}, "purchase": {1, 2}, "coupon": {1}},
)

KEYLESS = Case(
    name="tables_without_keys",
    tables={
        "person": [*INT_PK, "name VARCHAR(20)"],
        "event": ["person_id INTEGER", "kind VARCHAR(20)", _fk("person_id", "person")],
        "tag": ["name VARCHAR(20)", "note VARCHAR(20)", "UNIQUE (name)"],
        "person_tag": ["person_id INTEGER NOT NULL", "tag_name VARCHAR(20)", _fk("person_id", "person"),
                       _fk("tag_name", "tag", "name")],
    },
    rows={
        "person": ("id name", [(1, "ann"), (2, "bob"), (3, "cy")]),
        "event": ("person_id kind", [(1, "login"), (1, "login"), (2, "x"), (3, "y"), (None, "system"),
                                     (None, "system")]),
        "tag": ("name note", [("red", "r"), ("blue", "b"), (None, "untagged"), (None, "untagged")]),
        "person_tag": ("person_id tag_name", [(1, "red"), (2, "blue"), (1, "red"), (3, None)]),
    },
    subset="""
roots:
  - {table: person, where: "id = 1"}
  - {table: event, where: "kind = 'y'"}
""",
    root_match=[lambda r: r["id"] == 1, lambda r: r["kind"] == "y"],
    expected={"person": {1, 3}, "tag": {"red"}},
)

TEXT_KEYS = Case(
    name="text_keys",
    tables={
        "product": ["sku VARCHAR(40) NOT NULL", "title VARCHAR(40)", "PRIMARY KEY (sku)"],
        "review": [*INT_PK, "sku VARCHAR(40) NOT NULL", "stars INTEGER", _fk("sku", "product", "sku")],
        "bundle": ["code VARCHAR(40) NOT NULL", "main_sku VARCHAR(40)", "PRIMARY KEY (code)",
                   _fk("main_sku", "product", "sku")],
    },
    rows={
        "product": ("sku title", [("A-1", "one"), ("b 2", "two"), ("ünï-3", "three"), ("it's", "four"),
                                  ("", "empty")]),
        "review": ("id sku stars", [(1, "A-1", 5), (2, "b 2", 4), (3, "b 2", 3), (4, "ünï-3", 1), (5, "it's", 2),
                                    (6, "", 1)]),
        "bundle": ("code main_sku", [("x", "ünï-3"), ("y", "b 2"), ("z", "")]),
    },
    subset="""
roots:
  - {table: product, where: "sku IN ('b 2', 'it''s')"}
  - {table: bundle, where: "code IN ('x', 'z')"}
""",
    root_match=[lambda r: r["sku"] in ("b 2", "it's"), lambda r: r["code"] in ("x", "z")],
    expected={"product": {"b 2", "it's", "ünï-3", ""}, "review": {2, 3, 5}, "bundle": {"x", "y", "z"}},
)

UUID_A = "0b7a2f7e-8d7c-4c57-9b7e-3d2e1f0a9c11"
UUID_B = "f3c1e2d4-0000-4000-8000-00000000000b"
UUID_C = "7d1e1c33-5a2b-4f6e-a1c0-9e8d7c6b5a4f"
UUID_KEYS = Case(
    name="uuid_keys",
    tables={
        "account": [{"postgresql": "id UUID NOT NULL", "mysql": "id UUID NOT NULL", "sqlite": "id CHAR(36) NOT NULL"},
                    "name VARCHAR(20)",
                    "PRIMARY KEY (id)"],
        "login": [*INT_PK, {"postgresql": "account_id UUID", "mysql": "account_id UUID",  # MariaDB's own UUID
                            "sqlite": "account_id CHAR(36)"},
                  _fk("account_id", "account")],
    },
    rows={
        "account": ("id name", [(UUID_A, "a"), (UUID_B, "b"), (UUID_C, "c")]),
        "login": ("id account_id", [(1, UUID_A), (2, UUID_B), (3, UUID_A), (4, None), (5, UUID_C)]),
    },
    subset=f"""
roots:
  - {{table: account, where: "id = '{UUID_A}'"}}
  - {{table: login, where: "id = 5"}}
""",
    root_match=[lambda r: r["id"] == UUID_A, lambda r: r["id"] == 5],
    expected={"account": {UUID_A, UUID_C}, "login": {1, 3, 5}},
)

RESERVED_NAMES = Case(
    name="reserved_and_mixed_case_identifiers",
    tables={
        "user": ['"UserId" INTEGER NOT NULL', '"name" VARCHAR(20)', 'PRIMARY KEY ("UserId")'],
        "Order": ['"Id" INTEGER NOT NULL', '"user" INTEGER', '"Group" INTEGER', 'PRIMARY KEY ("Id")',
                  'FOREIGN KEY ("user") REFERENCES "user" ("UserId")'],
        "select": ['"key" INTEGER NOT NULL', '"from" INTEGER NOT NULL', '"where" VARCHAR(10)', 'PRIMARY KEY ("key")',
                   'FOREIGN KEY ("from") REFERENCES "Order" ("Id")'],
    },
    rows={
        "user": ("UserId name", [(1, "ann"), (2, "bob"), (3, "cy")]),
        "Order": ("Id user Group", [(10, 1, 1), (11, 2, 2), (12, 3, 1), (13, None, 2)]),
        "select": ("key from where", [(100, 10, "a"), (101, 11, "b"), (102, 12, "c"), (103, 11, "d")]),
    },
    subset="""
roots:
  - {table: Order, where: '«Group» = 2'}
  - {table: user, where: '«UserId» = 3'}
""",
    root_match=[lambda r: r["Group"] == 2, lambda r: r["UserId"] == 3],
    expected={"user": {2, 3}, "Order": {11, 12, 13}, "select": {101, 102, 103}},
)

EXCLUDED = Case(
    name="excluded_tables",
    tables={
        "audit": [*INT_PK, "what VARCHAR(20)"],
        "account": [*INT_PK, "last_audit_id INTEGER", _fk("last_audit_id", "audit")],
        "entry": [*INT_PK, "account_id INTEGER NOT NULL", "audit_id INTEGER", _fk("account_id", "account"),
                  _fk("audit_id", "audit")],
        "audit_note": [*INT_PK, "audit_id INTEGER NOT NULL", _fk("audit_id", "audit")],
    },
    rows={
        "audit": ("id what", [(1, "x"), (2, "y")]),
        "account": ("id last_audit_id", [(1, 1), (2, 2), (3, None)]),
        "entry": ("id account_id audit_id", [(1, 1, 1), (2, 1, None), (3, 2, 2)]),
        "audit_note": ("id audit_id", [(1, 1)]),
    },
    subset="""
roots: [{table: account, where: "id = 1"}]
exclude: [audit, {table: audit_note, mode: omit}]
""",
    root_match=[lambda r: r["id"] == 1],
    expected={"account": {1}, "entry": {1, 2}, "audit": set(), "audit_note": set()},
)

CHAIN = {
    "customer": [*INT_PK, "name VARCHAR(20)"],
    "product": [*INT_PK, "title VARCHAR(20)"],
    "orders": [*INT_PK, "customer_id INTEGER NOT NULL", _fk("customer_id", "customer")],
    "order_item": [*INT_PK, "order_id INTEGER NOT NULL", "product_id INTEGER NOT NULL", _fk("order_id", "orders"),
                   _fk("product_id", "product")],
    "note": [*INT_PK, "customer_id INTEGER", _fk("customer_id", "customer")],
}
CHAIN_ROWS: dict[str, tuple[str, list[tuple[object, ...]]]] = {
    "customer": ("id name", [(1, "ann"), (2, "bob"), (3, "cy")]),
    "product": ("id title", [(1, "pen"), (2, "ink"), (3, "pad")]),
    "orders": ("id customer_id", [(1, 1), (2, 1), (3, 2), (4, 3), (5, 1)]),
    "order_item": ("id order_id product_id", [(1, 1, 1), (2, 1, 2), (3, 2, 1), (4, 3, 1), (5, 3, 3), (6, 4, 2),
                                              (7, 5, 3), (8, 5, 1), (9, 4, 3)]),
    "note": ("id customer_id", [(1, 1), (2, 2), (3, None)]),
}

CHILDREN_NONE = Case(
    name="children_none",
    tables=CHAIN, rows=CHAIN_ROWS,
    subset="roots: [{table: orders, where: 'id = 3'}]\nchildren: none",
    root_match=[lambda r: r["id"] == 3],
    expected={"orders": {3}, "customer": {2}, "order_item": set(), "note": set()},
)

EDGE_OVERRIDES = Case(
    name="per_edge_children",
    tables=CHAIN, rows=CHAIN_ROWS,
    subset="""
roots: [{table: customer, where: "id = 2"}]
edges:
  - {fk: "note(customer_id)", children: none}
  - {fk: order_item.product_id, children: all}
""",
    root_match=[lambda r: r["id"] == 2],
    # customer 2 -> order 3 -> items 4, 5 -> products 1, 3, whose items all come (children: all),
    # bringing orders 1, 2, 4, 5 and customers 1, 3 as parents (not their notes or other items).
    expected={"customer": {1, 2, 3}, "orders": {1, 2, 3, 4, 5}, "order_item": {1, 3, 4, 5, 7, 8, 9},
              "product": {1, 3}, "note": set()},
)

PASSTHROUGH = Case(
    name="passthrough_and_several_roots",
    tables={
        "continent": [*INT_PK, "name VARCHAR(20)"],
        "country": [*INT_PK, "continent_id INTEGER NOT NULL", _fk("continent_id", "continent")],
        "city": [*INT_PK, "country_id INTEGER NOT NULL", _fk("country_id", "country")],
        "shop": [*INT_PK, "city_id INTEGER NOT NULL", _fk("city_id", "city")],
        "sale": [*INT_PK, "shop_id INTEGER NOT NULL", _fk("shop_id", "shop")],
    },
    rows={
        "continent": ("id name", [(1, "europe"), (2, "asia"), (3, "antarctica")]),
        "country": ("id continent_id", [(1, 1), (2, 1), (3, 2)]),
        "city": ("id country_id", [(1, 1), (2, 2), (3, 3), (4, 3)]),
        "shop": ("id city_id", [(1, 1), (2, 2), (3, 3), (4, 4)]),
        "sale": ("id shop_id", [(1, 1), (2, 1), (3, 2), (4, 3), (5, 4), (6, 4)]),
    },
    subset="""
roots:
  - {table: sale, where: "id = 4"}
  - {table: shop, where: "id = 4"}
passthrough: [country]
""",
    root_match=[lambda r: r["id"] == 4, lambda r: r["id"] == 4],
    expected={"country": {1, 2, 3}, "continent": {1, 2}, "city": {3, 4}, "shop": {3, 4}, "sale": {4, 5, 6}},
)

VIRTUAL_KEYS = Case(
    name="virtual_keys",
    tables={
        "app_user": ["id INTEGER NOT NULL", "name VARCHAR(20)"],
        "post": ["id INTEGER NOT NULL", "author INTEGER", "title VARCHAR(20)"],
        "comment": ["id INTEGER NOT NULL", "post_id INTEGER", "by_user INTEGER"],
    },
    rows={
        "app_user": ("id name", [(1, "ann"), (2, "bob"), (3, "cy")]),
        "post": ("id author title", [(1, 1, "a"), (2, 2, "b"), (3, 99, "orphan"), (4, 1, "c")]),
        "comment": ("id post_id by_user", [(1, 1, 2), (2, 2, 3), (3, 4, 1), (4, 3, 99)]),
    },
    subset="""
roots: [{table: app_user, where: "id = 1"}, {table: post, where: "id = 3"}]
virtual_primary_keys: {app_user: [id], post: [id], comment: [id]}
virtual_foreign_keys:
  - {table: post, columns: [author], references: app_user, ref_columns: [id]}
  - {table: comment, columns: [post_id], references: post, ref_columns: [id]}
  - {table: comment, columns: [by_user], references: app_user}
""",
    root_match=[lambda r: r["id"] == 1, lambda r: r["id"] == 3],
    virtual_fks=[("post", ("author",), "app_user", ("id",)), ("comment", ("post_id",), "post", ("id",)),
                 ("comment", ("by_user",), "app_user", ("id",))],
    # user 1 -> posts 1, 4 and comment 3 (by_user); post 1 -> comment 1 -> its author user 2;
    # root post 3 (author 99 exists nowhere) -> comment 4 (by user 99, nowhere either).
    expected={"app_user": {1, 2}, "post": {1, 3, 4}, "comment": {1, 3, 4}},
)

VIRTUAL_WHOLE_ROOT = Case(
    name="virtual_fk_from_whole_root",
    tables=VIRTUAL_KEYS.tables, rows=VIRTUAL_KEYS.rows,
    subset=VIRTUAL_KEYS.subset.replace('roots: [{table: app_user, where: "id = 1"}, {table: post, where: "id = 3"}]',
                                       "roots: [app_user]"),
    root_match=[None],
    virtual_fks=VIRTUAL_KEYS.virtual_fks,
    # every user and all their descendants; post 3 and comment 4 (user 99 exists nowhere) are nobody's
    expected={"app_user": {1, 2, 3}, "post": {1, 2, 4}, "comment": {1, 2, 3}},
)

_GENERATED = {
    "sqlite": "total INTEGER GENERATED ALWAYS AS (qty * price) VIRTUAL",
    "postgresql": "total INTEGER GENERATED ALWAYS AS (qty * price) STORED",
    "mysql": "total INTEGER AS (qty * price) VIRTUAL",
}
GENERATED = Case(
    name="generated_columns",
    tables={
        "cart": [*INT_PK],
        "line": [*INT_PK, "cart_id INTEGER NOT NULL", "qty INTEGER", "price INTEGER", _GENERATED,
                 _fk("cart_id", "cart")],
    },
    rows={"cart": ("id", [(1,), (2,)]), "line": ("id cart_id qty price", [(1, 1, 2, 3), (2, 2, 1, 1), (3, 1, 5, 5)])},
    subset="roots: [{table: cart, where: 'id = 1'}]",
    root_match=[lambda r: r["id"] == 1],
    expected={"cart": {1}, "line": {1, 3}},
)


def _limit_check(result: Extracted, data: dict[str, list[Row]]) -> None:
    per_customer = Counter(r["customer_id"] for r in result.rows["orders"])
    source = Counter(r["customer_id"] for r in data["orders"])
    assert per_customer == {c: min(2, n) for c, n in source.items()}, per_customer
    items = Counter(r["order_id"] for r in result.rows["order_item"])
    assert all(n <= 1 for n in items.values())
    assert set(items) == {r["id"] for r in result.rows["orders"]}


LIMIT_PER_PARENT = Case(
    name="limit_per_parent",
    tables=CHAIN, rows=CHAIN_ROWS,
    subset="""
roots: [customer]
limit_per_parent: 2
edges: [{fk: order_item(order_id), limit_per_parent: 1}]
""",
    root_match=[None],
    oracle=False,
    check=_limit_check,
)

PORTABLE = [SELF_REFERENCE, CYCLE_TWO_TABLES, CYCLE_PARENTS_ONLY, CYCLE_THREE_TABLES, COMPOSITE_KEYS, UNIQUE_NOT_PK,
            SAME_PARENT_TWICE, DIAMOND, NULLABLE_FKS, KEYLESS, TEXT_KEYS, UUID_KEYS, RESERVED_NAMES, EXCLUDED,
            CHILDREN_NONE, EDGE_OVERRIDES, PASSTHROUGH, VIRTUAL_KEYS, VIRTUAL_WHOLE_ROOT, GENERATED, LIMIT_PER_PARENT]

# -- PostgreSQL only ------------------------------------------------------------------------

PARTITIONED = Case(
    name="pg_partitioned_table",
    dialects=("postgresql",),
    tables={
        "customer": [*INT_PK, "name VARCHAR(20)"],
        "payment": ["id INTEGER NOT NULL", "customer_id INTEGER NOT NULL", "paid_on DATE NOT NULL",
                    "amount NUMERIC(6, 2)", "PRIMARY KEY (id, paid_on)"],
        "refund": [*INT_PK, "payment_id INTEGER NOT NULL", "paid_on DATE NOT NULL",
                   _fk("payment_id, paid_on", "payment", "id, paid_on")],
    },
    table_suffix={"payment": {"postgresql": " PARTITION BY RANGE (paid_on)"}},
    after_create={"postgresql": [
        "CREATE TABLE payment_2022_01 PARTITION OF payment FOR VALUES FROM ('2022-01-01') TO ('2022-02-01')",
        "CREATE TABLE payment_2022_02 PARTITION OF payment FOR VALUES FROM ('2022-02-01') TO ('2022-03-01')",
        "CREATE TABLE payment_2022_03 PARTITION OF payment FOR VALUES FROM ('2022-03-01') TO ('2022-04-01')",
    ]},
    after_rows={"postgresql": [  # FKs declared on two partitions only, as in Pagila
        "ALTER TABLE payment_2022_01 ADD FOREIGN KEY (customer_id) REFERENCES customer (id)",
        "ALTER TABLE payment_2022_02 ADD FOREIGN KEY (customer_id) REFERENCES customer (id)",
    ]},
    extra_fks=[("payment", ("customer_id",), "customer", ("id",))],
    rows={
        "customer": ("id name", [(1, "ann"), (2, "bob"), (3, "cy")]),
        "payment": ("id customer_id paid_on amount", [
            (1, 1, "2022-01-05", 1.5), (2, 2, "2022-01-06", 2), (3, 1, "2022-02-07", 3), (4, 3, "2022-02-08", 4),
            (5, 1, "2022-03-09", 5), (6, 2, "2022-03-10", 6), (7, 3, "2022-03-11", 7)]),
        "refund": ("id payment_id paid_on", [(1, 5, "2022-03-09"), (2, 6, "2022-03-10"), (3, 4, "2022-02-08")]),
    },
    subset="roots: [{table: customer, where: 'id = 1'}]",
    root_match=[lambda r: r["id"] == 1],
    expected={"customer": {1}, "payment": {1, 3, 5}, "refund": {1}},
)

CROSS_SCHEMA = Case(
    name="pg_cross_schema_fks",
    dialects=("postgresql",),
    schemas=("crm", "sales", "Billing"),
    before={"postgresql": ["CREATE SCHEMA crm", "CREATE SCHEMA sales", 'CREATE SCHEMA "Billing"']},
    tables={
        "crm.customer": [*INT_PK, "name VARCHAR(20)"],
        "sales.orders": [*INT_PK, "customer_id INTEGER NOT NULL", _fk("customer_id", "crm.customer")],
        "Billing.Invoice": ['"Id" INTEGER NOT NULL', '"OrderId" INTEGER', 'PRIMARY KEY ("Id")',
                            'FOREIGN KEY ("OrderId") REFERENCES sales.orders (id)'],
    },
    rows={
        "crm.customer": ("id name", [(1, "ann"), (2, "bob")]),
        "sales.orders": ("id customer_id", [(1, 1), (2, 2), (3, 1)]),
        "Billing.Invoice": ("Id OrderId", [(1, 1), (2, 2), (3, None), (4, 3)]),
    },
    subset="roots: [{table: crm.customer, where: 'id = 1'}]",
    root_match=[lambda r: r["id"] == 1],
    expected={"crm.customer": {1}, "sales.orders": {1, 3}, "Billing.Invoice": {1, 4}},
)

PG_TYPES = Case(
    name="pg_types",
    dialects=("postgresql",),
    before={"postgresql": [
        "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')",
        "CREATE DOMAIN item_code AS VARCHAR(8) CHECK (VALUE ~ '^[A-Z]')",
    ]},
    tables={
        "mood_info": ["m mood NOT NULL", "label TEXT", "PRIMARY KEY (m)"],
        "item": ["code item_code NOT NULL", "mood mood", "tags TEXT[]", "scores INTEGER[]", "blob BYTEA",
                 "doc JSONB", "raw JSON", "n INTEGER GENERATED ALWAYS AS IDENTITY",
                 "code_len INTEGER GENERATED ALWAYS AS (length(code)) STORED", "PRIMARY KEY (code)",
                 _fk("mood", "mood_info", "m")],
        "item_event": ["id INTEGER GENERATED BY DEFAULT AS IDENTITY", "item_code item_code NOT NULL",
                       "at TIMESTAMPTZ", "PRIMARY KEY (id)", _fk("item_code", "item", "code")],
        "mood_log": ["m mood NOT NULL", "code item_code NOT NULL", "seq INTEGER NOT NULL",  # enum + domain key
                     "PRIMARY KEY (m, code, seq)", _fk("code", "item", "code")],
        "mood_note": [*INT_PK, "m mood", "code item_code", "seq INTEGER",
                      _fk("m, code, seq", "mood_log", "m, code, seq")],
    },
    rows={
        "mood_info": ("m label", [("sad", "s"), ("ok", "o"), ("happy", "h")]),
        "item": ("code mood tags scores blob doc raw", [
            ("A1", "happy", ["x", "y"], [1, 2], b"\x00\xff", '{"b": 1, "a": [1, 2]}', '{"k": "v"}'),
            ("B2", "sad", [], None, b"", '{}', 'null'),
            ("C3", None, None, [3], None, None, None),
            ("D4", "ok", ["z"], [4], b"\x01", '{"x": null}', '[1]'),
        ]),
        "item_event": ("id item_code at", [(1, "A1", "2024-01-01T10:00:00+00:00"), (2, "C3", None), (3, "B2", None),
                                           (4, "A1", None)]),
        "mood_log": ("m code seq", [("happy", "A1", 1), ("sad", "B2", 1), ("happy", "C3", 2), ("ok", "D4", 1)]),
        "mood_note": ("id m code seq", [(1, "happy", "A1", 1), (2, "sad", "B2", 1), (3, None, "C3", 2),
                                        (4, "ok", "D4", 1)]),
    },
    subset="""
roots:
  - {table: item_event, where: "id IN (1, 2)"}
  - {table: mood_note, where: "id IN (1, 3)"}
""",
    root_match=[lambda r: r["id"] in (1, 2), lambda r: r["id"] in (1, 3)],
    expected={"item_event": {1, 2}, "item": {"A1", "C3"}, "mood_info": {"happy"}, "mood_note": {1, 3}},
)

PG_ONLY = [PARTITIONED, CROSS_SCHEMA, PG_TYPES]
