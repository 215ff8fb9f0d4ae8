"""The factory a request may see, and the registry objects inside it.

Every factory-scoped route depends on :func:`engineer`, which admits factory engineers
only and carries their factory from the key. Objects are looked up *within* that
factory, so another factory's machine is simply not found: the answer is the same 404
as for an id that exists nowhere, and says nothing about other tenants.
"""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import Depends, Path

from api.auth import Principal, Role, require
from api.context import AppContext, context
from api.models import Machine
from api.problems import ProblemError
from millwatch.contract import factory_database

__all__ = ["MachineId", "Tenant", "engineer", "machine_in", "machines_of"]

#: A machine id path parameter, validated like the data contract's ids.
MachineId = Annotated[
    str,
    Path(pattern=r"^[a-z0-9-]{1,32}$", description="Machine id", examples=["l0001"]),
]


class Tenant:
    """A factory engineer's factory and the resources to read it."""

    def __init__(self, principal: Principal, ctx: AppContext) -> None:
        self.principal = principal
        self.ctx = ctx
        self.factory_id: str = principal.factory_id or ""
        self.database = factory_database(self.factory_id)


def engineer(
    principal: Annotated[Principal, Depends(require(Role.FACTORY_ENGINEER))],
    ctx: Annotated[AppContext, Depends(context)],
) -> Tenant:
    """FastAPI dependency: the calling engineer's factory."""
    return Tenant(principal, ctx)


def machines_of(
    tenant: Tenant, hall: str | None = None, machine_type: str | None = None
) -> list[Machine]:
    """Registered machines of the tenant's factory, ordered by id."""
    query = sa.select(Machine).where(Machine.factory_id == tenant.factory_id)
    if hall is not None:
        query = query.where(Machine.hall_id == hall)
    if machine_type is not None:
        query = query.where(Machine.machine_type == machine_type)
    with tenant.ctx.database.session() as session:
        return list(session.execute(query.order_by(Machine.id)).scalars())


def machine_in(tenant: Tenant, machine_id: str) -> Machine:
    """The tenant's machine ``machine_id``, or a 404 problem."""
    machine = tenant.ctx.machine_of(tenant.factory_id, machine_id)
    if machine is None:
        raise ProblemError(404, "Not found", f"no machine {machine_id!r} in your factory")
    return machine
