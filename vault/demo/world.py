"""Demo data for ``vault init --demo``: 15 fictional consortia, their applicants, ten reviewers
(some employed by organisations that are partners somewhere, so conflicts of interest exist),
and one officer, auditor and administrator. Every name is fictional."""

from __future__ import annotations

import random
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from vault import crypto
from vault.consortia.models import Consortium
from vault.consortia.service import ConsortiumService
from vault.documents.submissions import SubmissionService
from vault.identity.models import Role
from vault.identity.service import IdentityService
from vault.organizations.models import Organization, OrganizationKind
from vault.organizations.service import OrganizationService
from vault.programmes.models import Programme

DOMAIN = "demo.example"

#: (consortium name, lead company)
CONSORTIA = [
    ("Hanbit Foundation Model Team", "Hanbit Intelligence Co."),
    ("Saebyeok LLM Alliance", "Saebyeok Labs Inc."),
    ("Arirang Sovereign AI", "Arirang Systems Co."),
    ("Baekdu Open Model Consortium", "Baekdu Data Corp."),
    ("Cheongja Multimodal Team", "Cheongja Vision Co."),
    ("Dasan Reasoning Consortium", "Dasan Compute Inc."),
    ("Eunha Language Model Team", "Eunha Semantics Co."),
    ("Gaon National AI Team", "Gaon Platforms Corp."),
    ("Haneul Scale Consortium", "Haneul Cloud Inc."),
    ("Jaram Agents Alliance", "Jaram Robotics Co."),
    ("Maru Open Source AI", "Maru Software Inc."),
    ("Nuri Speech and Text Team", "Nuri Voice Co."),
    ("Onnuri Science Model", "Onnuri Research Corp."),
    ("Pureun Efficient AI", "Pureun Chips Inc."),
    ("Sejong Korean LLM Team", "Sejong Letters Co."),
]

UNIVERSITIES = [
    "Hangang National University", "Seorak Institute of Science and Technology",
    "Jeju Coastal University", "Gyeongju Heritage University", "Daedong Graduate School of AI",
    "Namsan University", "Geumgang University", "Yeongsan Graduate School of Data Science",
]
INSTITUTES = [
    "Korea Institute for Language Computing", "National Institute of Applied Statistics",
    "Institute for Trustworthy AI", "Korea Supercomputing Research Centre",
]
COMPANIES = [
    "Dolbit Data Labeling Co.", "Morae Storage Inc.", "Sanbit Healthcare AI Co.",
    "Bitgaram Legal Tech Inc.", "Noeul Fintech Corp.", "Kkotbit Education Co.",
    "Hwarang Security Inc.", "Bora Semiconductor Corp.", "Eoullim Media Co.",
    "Tteut Translation Inc.",
]
PUBLIC_BODIES = ["Daejeon Metropolitan Data Agency", "Korea Public Archives Service"]

#: Reviewers: (name, affiliation, kind). The first four work for organisations that are also
#: partners of some consortium, so the conflict rules have something to find.
REVIEWERS = [
    ("Kim Seo-yeon", UNIVERSITIES[0], OrganizationKind.UNIVERSITY),
    ("Lee Min-jun", UNIVERSITIES[1], OrganizationKind.UNIVERSITY),
    ("Park Ji-woo", INSTITUTES[0], OrganizationKind.RESEARCH_INSTITUTE),
    ("Choi Ha-eun", COMPANIES[0], OrganizationKind.COMPANY),
    ("Jung Do-hyun", "Chungcheong University", OrganizationKind.UNIVERSITY),
    ("Kang Yu-na", "Independent Evaluation Institute", OrganizationKind.RESEARCH_INSTITUTE),
    ("Yoon Si-woo", "Honam Graduate School of Engineering", OrganizationKind.UNIVERSITY),
    ("Jang Seo-jun", "Korea Standards Agency", OrganizationKind.PUBLIC_BODY),
    ("Lim Ji-ho", "Gangwon University", OrganizationKind.UNIVERSITY),
    ("Han Eun-seo", "Policy Research Institute for Digital Affairs",
     OrganizationKind.RESEARCH_INSTITUTE),
]

APPLICANT_NAMES = [
    "Oh Jae-won", "Seo Ye-jin", "Shin Hyun-woo", "Kwon Na-yeon", "Hwang Tae-yang",
    "Ahn So-yul", "Song Woo-jin", "Jeon Chae-won", "Hong Gun-woo", "Yoo Ha-rin",
    "Ko Min-seo", "Moon Jun-ho", "Yang Seo-hyun", "Son Dong-hyun", "Bae Ji-an",
]

#: Partners placed in given consortia so that every employer of reviewers 1-4 is a partner
#: somewhere (the universities of reviewers 1 and 2 already are, by rotation).
CONFLICT_PLANTS = {
    4: (INSTITUTES[0], OrganizationKind.RESEARCH_INSTITUTE),
    5: (COMPANIES[0], OrganizationKind.COMPANY),
}

CONTRIBUTIONS = {
    OrganizationKind.UNIVERSITY: "Pre-training research, evaluation and graduate researchers",
    OrganizationKind.RESEARCH_INSTITUTE: "Korean-language corpora and benchmark design",
    OrganizationKind.COMPANY: "Domain data and application pilots",
    OrganizationKind.PUBLIC_BODY: "Public-sector data and user evaluation",
}


@dataclass(frozen=True)
class Credential:
    """A demo login, printed once and written to the 0600 credentials file."""

    role: Role
    email: str
    password: str
    name: str
    note: str = ""


def demo_exists(session: Session, programme: Programme) -> bool:
    """Whether the programme already has consortia (demo data is created only once)."""
    return session.scalar(
        select(Consortium.id).where(Consortium.programme_id == programme.id).limit(1)
    ) is not None


def create_demo(
    session: Session, identity: IdentityService, consortia: ConsortiumService, programme: Programme
) -> list[Credential]:
    """Create the demo organisations, consortia, partner lists, submissions and accounts."""
    # Not for secrets: a fixed seed gives the same demo structure on every machine.
    rng = random.Random(2025)  # noqa: S311
    organizations = OrganizationService(session)
    submissions = SubmissionService(session)
    credentials: list[Credential] = []

    def account(role: Role, local: str, name: str, organization: Organization | None,
                note: str = "") -> None:
        password = crypto.random_password()
        user = identity.create_user(
            email=f"{local}@{DOMAIN}", display_name=name, role=role, password=password,
            organization=organization, demo_account=True,
        )
        credentials.append(Credential(role, user.email, password, name, note))

    # Reviewers' employers are registered organisations; the same organisations appear inside
    # some partner lists below (sealed), which is what conflict-of-interest checks look for.
    reviewer_orgs = [
        organizations.get_or_create(affiliation, kind) for _, affiliation, kind in REVIEWERS
    ]
    registered = {org.name: org for org in reviewer_orgs}
    partner_pool = (
        [(name, OrganizationKind.COMPANY) for name in COMPANIES]
        + [(name, OrganizationKind.RESEARCH_INSTITUTE) for name in INSTITUTES]
        + [(name, OrganizationKind.PUBLIC_BODY) for name in PUBLIC_BODIES]
    )
    for index, (team, lead_name) in enumerate(CONSORTIA):
        lead = organizations.get_or_create(lead_name, OrganizationKind.COMPANY)
        consortium = consortia.create(programme, team, lead)
        consortia.add_member(consortium, name=lead.name, kind=lead.kind, role="lead",
                             contribution="Model architecture, training and release",
                             organization=lead)
        university = UNIVERSITIES[index % len(UNIVERSITIES)]
        partners = [(university, OrganizationKind.UNIVERSITY)]
        partners += rng.sample(partner_pool, rng.randint(1, 4))  # 2-5 partners in all
        planted = CONFLICT_PLANTS.get(index)
        if planted and planted not in partners:
            partners[-1] = planted
        for name, kind in partners:
            consortia.add_member(
                consortium, name=name, kind=kind,
                role="university partner" if kind is OrganizationKind.UNIVERSITY else "partner",
                contribution=CONTRIBUTIONS[kind], organization=registered.get(name),
            )
        submissions.open_draft(consortium)
        applicant = APPLICANT_NAMES[index]
        account(Role.APPLICANT, f"applicant{index + 1:02d}", applicant, lead,
                note=f"lead contact of {team}")
        consortia.add_contact(consortium, identity.find_by_email(credentials[-1].email),
                              lead=True)

    for number, ((name, _affiliation, _kind), org) in enumerate(
        zip(REVIEWERS, reviewer_orgs, strict=True), start=1
    ):
        account(Role.REVIEWER, f"reviewer{number:02d}", name, org)
    ministry = organizations.get_or_create(
        "Ministry of Science and ICT (fictional demo)", OrganizationKind.PUBLIC_BODY
    )
    account(Role.OFFICER, "officer", "Programme Officer Cho", ministry)
    account(Role.AUDITOR, "auditor", "Auditor Nam", ministry)
    account(Role.ADMIN, "admin", "Administrator Baek", ministry)
    return credentials


def format_credentials(credentials: list[Credential]) -> str:
    """The credentials as an aligned text table."""
    lines = [f"{'role':<10} {'e-mail':<32} {'password':<18} name"]
    for c in credentials:
        note = f"  ({c.note})" if c.note else ""
        lines.append(f"{c.role.value:<10} {c.email:<32} {c.password:<18} {c.name}{note}")
    return "\n".join(lines) + "\n"
