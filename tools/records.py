"""A project's record as the gates read it: the project, its evidence, post-mortems and
successors, loaded in one place."""

from __future__ import annotations

from sqlmodel import Session, select

from memory.models import Evidence, PostmortemVersion, Project
from tools.bundle import evidence_bundle
from tools.gates import ProjectRecord
from tools.postmortem import postmortem_report
from tools.received import refresh_received


def load_record(session: Session, project: Project) -> ProjectRecord:
    pid = project.id
    if pid is not None:
        refresh_received(session, pid)  # spans from the learner's app verify step 4
    rec = ProjectRecord(
        project=project,
        evidence=list(session.exec(select(Evidence).where(Evidence.project_id == pid)).all()),
        postmortems=list(session.exec(
            select(PostmortemVersion).where(PostmortemVersion.project_id == pid)).all()),
        successors=list(session.exec(
            select(Project).where(Project.previous_project_id == pid)).all()),
    )
    if project.step == "postmortem":
        rec.postmortem_recheck = _recheck_postmortem(session, project, rec.postmortems)
    return rec


def _recheck_postmortem(session: Session, project: Project,
                        versions: list[PostmortemVersion]) -> list[str] | None:
    """What the latest submission still fails against the evidence as it is now (a fact
    confirmed after submitting counts); None when it passed or there is none."""
    submissions = [v for v in versions if v.source == "submission"]
    if not submissions:
        return None
    latest = max(submissions, key=lambda v: v.version)
    if not latest.report.get("failed"):
        return None
    return list(postmortem_report(latest.text, evidence_bundle(session, project))["failed"])
