"""A tenant schema declared the way users declare theirs, and its fixture sets.

Not the built-in domain: tables without a schema, capitalised and reserved-word table
and column names, a plain foreign key, a self-referencing one, a composite primary key
with a composite foreign key to it, integer keys, naive and aware timestamps, a CHECK
on a quoted column and a naming convention. A module of the ``tests`` package, so that
``TENANCY_METADATA=tests.user_schema:metadata`` can name it too.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
    UniqueConstraint,
)

__all__ = ["DATA", "NAMING", "metadata", "user_metadata"]

#: The fixture sets of this schema: ``jsonl/`` and ``csv/`` hold the same rows.
DATA = Path(__file__).parent / "data" / "user_schema"

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def user_metadata(schema: str | None = None) -> MetaData:
    """A fresh ``MetaData`` of the shop schema, declared without a schema (or in ``schema``)."""
    md = MetaData(schema=schema, naming_convention=NAMING)
    Table(
        "User",
        md,
        Column("UserId", Integer, primary_key=True),
        Column("select", String(40), nullable=False),
        Column("Group", String(40)),
        Column("CreatedAt", DateTime(timezone=True), nullable=False),
        UniqueConstraint("select"),
    )
    Table(
        "Employee",
        md,
        Column("EmployeeId", Integer, primary_key=True),
        Column("LastName", String(20), nullable=False),
        Column("ReportsTo", Integer, ForeignKey("Employee.EmployeeId")),
        Column("HireDate", DateTime),
        Index(None, "LastName"),
    )
    Table(
        "Order",
        md,
        Column("OrderId", Integer, primary_key=True),
        Column("User", Integer, ForeignKey("User.UserId"), nullable=False),
        Column("SupportRep", Integer, ForeignKey("Employee.EmployeeId")),
        Column("OrderDate", DateTime(timezone=False), nullable=False),
        Column("Total", Numeric(10, 2), nullable=False),
    )
    Table(
        "OrderLine",
        md,
        Column("OrderId", Integer, ForeignKey("Order.OrderId"), primary_key=True),
        Column("LineNo", SmallInteger, primary_key=True),
        Column("Quantity", Integer, nullable=False),
        Column("UnitPrice", Numeric(10, 2), nullable=False),
        CheckConstraint('"Quantity" > 0', name="quantity_positive"),
    )
    Table(
        "Shipment",
        md,
        Column("ShipmentId", Integer, primary_key=True),
        Column("OrderId", Integer, nullable=False),
        Column("LineNo", SmallInteger, nullable=False),
        Column("group", String(20)),
        Column("ShippedAt", DateTime(timezone=True)),
        ForeignKeyConstraint(["OrderId", "LineNo"], ["OrderLine.OrderId", "OrderLine.LineNo"]),
        Index(None, "OrderId", "LineNo"),
    )
    return md


#: What ``TENANCY_METADATA=tests.user_schema:metadata`` names.
metadata = user_metadata()
