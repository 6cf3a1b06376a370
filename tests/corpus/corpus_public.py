"""Ground truth for the public DVD-rental databases: Pagila (PostgreSQL) and Sakila (MariaDB).

The databases themselves are read from the shared datasets folder (never copied here) and
loaded with the loaders in ``tests/conftest.py``. Both hold the same model; Pagila adds
``film.fulltext`` (a ``tsvector``) and ``customer.activebool`` and has no
``payment.last_update``; Sakila adds ``film_text``.

Example:
    >>> truth = sakila_truth("postgresql")
    >>> truth[("staff", "password")].kinds, truth[("film", "title")].classification
    (('secret',), 'non_personal')
    >>> ("film_text", "title") in sakila_truth("mysql"), ("film_text", "title") in truth
    (True, False)
"""

from __future__ import annotations

from corpus_kit import KEY, D, Label, N, Q, S

UPDATED = N("when the row was last written: a system timestamp")
SALE_DATE = N("the date of a rental or payment", alt=("Q",))

_TABLES: dict[str, dict[str, Label]] = {
    "actor": {"actor_id": KEY, "first_name": D("first_name", why="a person's name; credits are public, the product "
                                                                 "still masks person names"),
              "last_name": D("last_name", why="a person's name"), "last_update": UPDATED},
    "address": {"address_id": KEY, "address": D("street_address"),
                "address2": D("street_address", why="empty or NULL here, an address line by definition"),
                "district": N("a state or province (Alberta, QLD, Texas)", alt=("Q",)), "city_id": KEY,
                "postal_code": Q("postcode"), "phone": D("phone"), "last_update": UPDATED},
    "category": {"category_id": KEY, "name": N("a film category"), "last_update": UPDATED},
    "city": {"city_id": KEY, "city": N("a lookup table of cities", alt=("Q",)), "country_id": KEY,
             "last_update": UPDATED},
    "country": {"country_id": KEY, "country": N("a country"), "last_update": UPDATED},
    "customer": {"customer_id": KEY, "store_id": KEY, "first_name": D("first_name"), "last_name": D("last_name"),
                 "email": D("email"), "address_id": KEY, "active": N("a flag"),
                 "create_date": N("when the account was opened", alt=("Q",)), "last_update": UPDATED},
    "film": {"film_id": KEY, "title": N("a film title"), "description": N("a film's synopsis"),
             "release_year": N("a year"), "language_id": KEY, "original_language_id": KEY,
             "rental_duration": N("a number of days"), "rental_rate": N("a price"), "length": N("a duration"),
             "replacement_cost": N("a price"), "rating": N("a rating"), "special_features": N("a list of features"),
             "last_update": UPDATED},
    "film_actor": {"actor_id": KEY, "film_id": KEY, "last_update": UPDATED},
    "film_category": {"film_id": KEY, "category_id": KEY, "last_update": UPDATED},
    "inventory": {"inventory_id": KEY, "film_id": KEY, "store_id": KEY, "last_update": UPDATED},
    "language": {"language_id": KEY, "name": N("a language"), "last_update": UPDATED},
    "payment": {"payment_id": KEY, "customer_id": KEY, "staff_id": KEY, "rental_id": KEY,
                "amount": N("the amount of a rental payment"), "payment_date": SALE_DATE},
    "rental": {"rental_id": KEY, "rental_date": SALE_DATE, "inventory_id": KEY, "customer_id": KEY,
               "return_date": SALE_DATE, "staff_id": KEY, "last_update": UPDATED},
    "staff": {"staff_id": KEY, "first_name": D("first_name"), "last_name": D("last_name"), "address_id": KEY,
              "email": D("email"), "store_id": KEY, "active": N("a flag"), "username": D("username"),
              "password": S("secret"), "last_update": UPDATED,
              "picture": D("photo", why="a staff member's picture")},
    "store": {"store_id": KEY, "manager_staff_id": KEY, "address_id": KEY, "last_update": UPDATED},
}


def sakila_truth(dialect: str) -> dict[tuple[str, str], Label]:
    """Labels for every column of Pagila (``postgresql``) or Sakila (``mysql``)."""
    tables = {name: dict(columns) for name, columns in _TABLES.items()}
    if dialect == "postgresql":
        tables["customer"]["activebool"] = N("a flag")
        tables["film"]["fulltext"] = N("a search index of the film's title and synopsis")
    else:
        tables["payment"]["last_update"] = UPDATED
        tables["film_text"] = {"film_id": KEY, "title": N("a film title"), "description": N("a film's synopsis")}
    return {(table, column): label for table, columns in tables.items() for column, label in columns.items()}
