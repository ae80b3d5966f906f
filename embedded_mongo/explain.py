"""The explain command: how find, count, distinct, aggregate, findAndModify, update and delete are answered."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from . import aggregation
from .errors import CommandError
from .identity import server_info
from .query import Query, parse_sort
from .reads import collection_name, count_query, find_query

if TYPE_CHECKING:
    from .context import CommandContext, Services

_VERBOSITIES = {"queryPlanner", "executionStats", "allPlansExecution"}


def explain(engine: Services, ctx: CommandContext, db: str, command: dict) -> dict:
    """The explain command."""
    inner = command.get("explain")
    if not isinstance(inner, dict) or not inner:
        raise CommandError(2, "explain command requires a nested object")
    verbosity = command.get("verbosity", "allPlansExecution")
    if verbosity not in _VERBOSITIES:
        raise CommandError(2, f"verbosity string must be one of {sorted(_VERBOSITIES)}")
    name = next(iter(inner))
    if name == "find":
        query, _project, _batch, _single = find_query(engine, db, inner)
        reply = _report(query, f"{db}.{inner['find']}", verbosity, query.winning_plan(inner.get("projection")))
    elif name == "count":
        query = count_query(engine, db, inner)
        reply = _report(
            query, f"{db}.{inner['count']}", verbosity, {"stage": "COUNT", "inputStage": query.winning_plan()}
        )
    elif name == "distinct":
        coll = collection_name(inner, "distinct")
        query = Query(engine.storage, engine.storage.collection(db, coll), inner.get("query") or {})
        reply = _report(
            query,
            f"{db}.{coll}",
            verbosity,
            {"stage": "PROJECTION_DEFAULT", "transformBy": {inner.get("key"): 1}, "inputStage": query.winning_plan()},
        )
    elif name == "aggregate":
        return explain_aggregate(engine, db, inner, verbosity)
    elif name in ("findAndModify", "findandmodify"):
        coll = collection_name(inner, name)
        query = Query(
            engine.storage,
            engine.storage.collection(db, coll),
            inner.get("query") or {},
            sort=parse_sort(inner.get("sort")),
            limit=1,
            hint=inner.get("hint"),
        )
        stage = "DELETE" if inner.get("remove") else "UPDATE"
        reply = _report(query, f"{db}.{coll}", verbosity, {"stage": stage, "inputStage": query.winning_plan()})
    elif name in ("update", "delete"):
        coll = collection_name(inner, name)
        statements = inner.get("updates" if name == "update" else "deletes")
        if not isinstance(statements, list) or len(statements) != 1 or not isinstance(statements[0], dict):
            raise CommandError(2, f"explain of {name} needs exactly one statement")
        statement = statements[0]
        single = not statement.get("multi") if name == "update" else statement.get("limit") == 1
        query = Query(
            engine.storage,
            engine.storage.collection(db, coll),
            statement.get("q") or {},
            limit=1 if single else 0,
            hint=statement.get("hint"),
        )
        reply = _report(query, f"{db}.{coll}", verbosity, {"stage": name.upper(), "inputStage": query.winning_plan()})
    else:
        raise CommandError(2, f"Explain failed due to unknown command: {name}")
    reply["command"] = inner
    reply["serverInfo"] = server_info(ctx.me)
    reply["ok"] = 1.0
    return reply


def _planner(query: Query, namespace: str, plan: dict) -> dict[str, Any]:
    return {
        "namespace": namespace,
        "indexFilterSet": False,
        "parsedQuery": query.query,
        "maxIndexedOrSolutionsReached": False,
        "maxIndexedAndSolutionsReached": False,
        "maxScansToExplodeReached": False,
        "winningPlan": plan,
        "rejectedPlans": [],
    }


def _report(query: Query, namespace: str, verbosity: str, plan: dict) -> dict[str, Any]:
    reply: dict[str, Any] = {"explainVersion": "1", "queryPlanner": _planner(query, namespace, plan)}
    if verbosity != "queryPlanner":
        started = time.perf_counter()
        returned = sum(1 for _ in query.run())
        reply["executionStats"] = {
            "executionSuccess": True,
            "nReturned": returned,
            "executionTimeMillis": int((time.perf_counter() - started) * 1000),
            "totalKeysExamined": query.stats.keys_examined,
            "totalDocsExamined": query.stats.docs_examined,
            "executionStages": {**plan, "nReturned": returned},
        }
    return reply


def explain_aggregate(engine: Services, db: str, command: dict, verbosity: str) -> dict:
    """Explain of an aggregate: the plan of its leading $match/$sort/$skip/$limit, then the other stages."""
    name = collection_name(command, "aggregate")
    pipeline = command.get("pipeline")
    if not isinstance(pipeline, list) or not all(isinstance(s, dict) for s in pipeline):
        raise CommandError(14, "'pipeline' option must be specified as an array")
    if pipeline and "$changeStream" in pipeline[0]:
        raise CommandError(238, "explain of a $changeStream is not supported by the embedded engine")
    plan = aggregation.Pipeline(engine, db, name, pipeline)
    query = plan.query
    report = _report(query, f"{db}.{name}", verbosity, query.winning_plan())
    if plan.stages:
        reply: dict[str, Any] = {"explainVersion": "1", "stages": [{"$cursor": report}, *plan.stages]}
    else:
        reply = report
    reply["ok"] = 1.0
    return reply
