"""Consent decisions over HTTP (grant, revoke, list) and the decisions waiting on people:
pending consent per party and credential uses awaiting approval. Every decision goes through
the facade (governance/consent_records.decide: checks, ledger, audit) with actor "web"."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from grace_pipelines.db.schema import utcnow
from grace_pipelines.governance.consent import parse_ttl
from grace_pipelines.web import models
from grace_pipelines.web.context import ACTOR, WebContext, context

router = APIRouter(tags=["consent"])
ERRORS = {400: {"model": models.ErrorBody}, 404: {"model": models.ErrorBody}}


@router.post("/consent/grant", response_model=models.Decision, responses=ERRORS)
def grant(body: models.GrantRequest, ctx: WebContext = Depends(context)) -> dict[str, Any]:
    """Record `party`'s consent for `scope` (until `ttl` or `expires_at`); with `wait`, run the
    work it releases before answering (else consent_sensor launches it)."""
    expires = body.expires_at or (utcnow() + parse_ttl(body.ttl) if body.ttl else None)
    with ctx.work_lock:
        ids = ctx.grace.grant(body.source, body.party, body.scope, actor=ACTOR, wait=body.wait, expires_at=expires)
        row = ctx.grace.resolve(body.source)
        return {"ids": ids, "source": ctx.grace.status_of(row.key).to_dict()}


@router.post("/consent/revoke", response_model=models.Decision, responses=ERRORS)
def revoke(body: models.RevokeRequest, ctx: WebContext = Depends(context)) -> dict[str, Any]:
    """Record a revocation: search stops returning the source at once; the purge runs through
    purge_job (now with `wait`)."""
    with ctx.work_lock:
        ids = ctx.grace.revoke(body.source, body.party, body.scope, actor=ACTOR, wait=body.wait)
        row = ctx.grace.resolve(body.source)
        return {"ids": ids, "source": ctx.grace.status_of(row.key).to_dict()}


@router.get("/consent", response_model=models.ConsentList)
def consent_list(
    pending: bool = Query(False, description="Only what still misses someone's grant."),
    ctx: WebContext = Depends(context),
) -> dict[str, Any]:
    """Per source and scope: participants, who granted and who is missing (as `grace consent list --json`)."""
    return {"consent": ctx.grace.consent_list(pending=pending)}


@router.get("/decisions", response_model=models.Decisions)
def decisions(ctx: WebContext = Depends(context)) -> dict[str, Any]:
    """What waits on a person: consent requests per party, and credential uses to approve."""
    parties: dict[str, list[dict[str, Any]]] = {}
    for item in ctx.grace.consent_list(pending=True):
        for party, command in zip(item["missing"], item["commands"]):
            if party in item["refused"]:
                continue  # decided no: nothing waits on them
            parties.setdefault(party, []).append(
                {"source_key": item["source_key"], "title": item["title"], "scope": item["scope"], "command": command}
            )
    return {
        "parties": [{"party": p, "waiting": w} for p, w in sorted(parties.items())],
        "credentials": ctx.grace.vault.pending(),
    }


@router.post("/secrets/approve", response_model=models.Approved, responses=ERRORS)
def approve_secret(body: models.ApproveRequest, ctx: WebContext = Depends(context)) -> dict[str, Any]:
    """Approve a credential use for one purpose (optionally for `ttl`), as `grace secrets
    approve`: the vault's own checks and its audit entry, actor "web"."""
    expires = utcnow() + parse_ttl(body.ttl) if body.ttl else None
    ctx.grace.vault.approve(body.name, body.purpose, actor=ACTOR, expires_at=expires)
    return {"name": body.name, "purpose": body.purpose, "expires_at": expires.isoformat() if expires else None}


@router.post("/secrets/refuse", response_model=models.Refused, responses=ERRORS)
def refuse_secret(body: models.RefuseRequest, ctx: WebContext = Depends(context)) -> dict[str, Any]:
    """Refuse a pending credential use: the request is closed unapproved (the engine stays
    refused) and the vault audits `vault.refuse`, actor "web"."""
    closed = ctx.grace.vault.refuse(body.name, body.purpose, actor=ACTOR)
    return {"name": body.name, "purpose": body.purpose, "requests_closed": closed}
