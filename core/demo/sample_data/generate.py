"""Generate the bundled sample company: ``people.csv`` and ``reviews.csv``.

Run ``python -m coachbridge.demo.sample_data.generate [--out DIR] [--seed N] [--size N]``. The
output depends only on the arguments (stdlib ``random`` with a fixed seed, a fixed "today"), so
the shipped files can be re-created byte for byte and a test checks that they are.

The company, Northwind Labs, has a CEO, three divisions, nine departments, and teams in six
cities and five time zones. Its reporting tree is six levels deep, with levels 9 (CEO) down to
1 (associates) following depth. Skills are drawn so that matching is meaningful: people at
level 5 and above hold the department and leadership skills that juniors list as interests.
"""

from __future__ import annotations

import argparse
import csv
import random
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path

from coachbridge.connectors import PERSON_COLUMNS

SEED = 20260101
SIZE = 320
TODAY = date(2026, 11, 1)  # fixed, so the files never depend on when they were generated
DOMAIN = "northwind.example"

PEOPLE_HEADER = PERSON_COLUMNS  # the CSV connector's default headers
REVIEWS_HEADER = ("employee_id", "cycle", "rating", "rating_scale_max", "completed_at")
# cycle -> (who must have been hired by then, the month its reviews were completed)
CYCLES = {
    "2025-H1": (date(2025, 4, 1), (2025, 7)),
    "2025-H2": (date(2025, 10, 1), (2026, 1)),
    "2026-H1": (date(2026, 4, 1), (2026, 7)),
}


@dataclass(frozen=True)
class Location:
    city: str
    timezone: str
    languages: tuple[str, ...]
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]


LOCATIONS = (
    Location(
        "Berlin",
        "Europe/Berlin",
        ("German", "English"),
        (
            "Jürgen",
            "Anna",
            "Lukas",
            "Lea",
            "Jörg",
            "Sophie",
            "Felix",
            "Mia",
            "Maximilian",
            "Hannah",
            "Björn",
            "Leonie",
            "Tobias",
            "Clara",
            "Emre",
            "Ayşe",
            "Paul",
            "Greta",
        ),
        (
            "Müller",
            "Schmidt",
            "Schäfer",
            "Weiß",
            "Fischer",
            "Becker",
            "Hoffmann",
            "Köhler",
            "Özdemir",
            "Wagner",
            "Krüger",
            "Neumann",
            "Lehmann",
            "Groß",
            "Schröder",
            "Vogel",
        ),
    ),
    Location(
        "London",
        "Europe/London",
        ("English",),
        (
            "Oliver",
            "Amelia",
            "Harry",
            "Isla",
            "George",
            "Zoë",
            "Siobhán",
            "Callum",
            "Priya",
            "Freya",
            "Rhys",
            "Niamh",
            "Samuel",
            "Chloe",
            "Aled",
            "Imogen",
        ),
        (
            "Smith",
            "Jones",
            "Taylor",
            "Brown",
            "Davies",
            "Evans",
            "Wilson",
            "Thomas",
            "Patel",
            "Roberts",
            "O'Connor",
            "Walsh",
            "Hughes",
            "Khan",
            "Wright",
            "Ó Súilleabháin",
        ),
    ),
    Location(
        "New York",
        "America/New_York",
        ("English", "Spanish"),
        (
            "James",
            "Olivia",
            "Michael",
            "Emma",
            "Daniel",
            "Ava",
            "José",
            "Sofía",
            "Malik",
            "Grace",
            "Ethan",
            "Chloé",
            "Marcus",
            "Layla",
            "Noah",
            "Renée",
        ),
        (
            "Johnson",
            "Williams",
            "Garcia",
            "Martínez",
            "Miller",
            "Davis",
            "Rodríguez",
            "Lee",
            "Washington",
            "Kim",
            "Cohen",
            "Nguyen",
            "Rivera",
            "Brooks",
            "Sullivan",
            "Peña",
        ),
    ),
    Location(
        "San Francisco",
        "America/Los_Angeles",
        ("English",),
        (
            "Ryan",
            "Emily",
            "Kevin",
            "Hannah",
            "Jason",
            "Mei",
            "Arjun",
            "Isabella",
            "Tyler",
            "Aiko",
            "Diego",
            "Natalie",
            "Brandon",
            "Lucía",
            "Connor",
            "Maya",
        ),
        (
            "Chen",
            "Wong",
            "Anderson",
            "Thompson",
            "Nakamura",
            "Lopez",
            "Shah",
            "Park",
            "Hernández",
            "Clark",
            "Yamamoto",
            "Lewis",
            "Tran",
            "Walker",
            "Young",
            "Gómez",
        ),
    ),
    Location(
        "Bengaluru",
        "Asia/Kolkata",
        ("English", "Hindi", "Kannada"),
        (
            "Aarav",
            "Ananya",
            "Vihaan",
            "Diya",
            "Rohan",
            "Saanvi",
            "Arjun",
            "Ishita",
            "Karthik",
            "Meera",
            "Siddharth",
            "Kavya",
            "Rahul",
            "Pooja",
            "Nikhil",
            "Lakshmi",
        ),
        (
            "Sharma",
            "Iyer",
            "Reddy",
            "Nair",
            "Gupta",
            "Rao",
            "Menon",
            "Kulkarni",
            "Patel",
            "Krishnan",
            "Bhat",
            "Desai",
            "Hegde",
            "Pillai",
            "Joshi",
            "Shetty",
        ),
    ),
    Location(
        "Warsaw",
        "Europe/Warsaw",
        ("Polish", "English"),
        (
            "Łukasz",
            "Zofia",
            "Jakub",
            "Małgorzata",
            "Piotr",
            "Agnieszka",
            "Michał",
            "Ewa",
            "Paweł",
            "Katarzyna",
            "Tomasz",
            "Joanna",
            "Bartłomiej",
            "Alicja",
        ),
        (
            "Nowak",
            "Kowalski",
            "Wiśniewski",
            "Wójcik",
            "Kamiński",
            "Lewandowski",
            "Zieliński",
            "Szymański",
            "Woźniak",
            "Dąbrowski",
            "Kozłowski",
            "Jankowski",
        ),
    ),
)
# Nicknames HRIS keep as "preferred name".
NICKNAMES = {
    "Michael": "Mike",
    "Maximilian": "Max",
    "Samuel": "Sam",
    "Katarzyna": "Kasia",
    "Małgorzata": "Gosia",
    "Siddharth": "Sid",
    "Daniel": "Dan",
    "Isabella": "Bella",
}

LEADERSHIP = (
    "People management",
    "Coaching",
    "Giving feedback",
    "Hiring",
    "Strategic thinking",
    "Public speaking",
    "Cross-functional leadership",
    "Conflict resolution",
    "Career development",
    "Delegation",
)


@dataclass(frozen=True)
class Department:
    name: str
    division: str
    size: int  # rough head count, including its managers
    skills: tuple[str, ...]
    ic_titles: tuple[str, str, str, str]  # levels 1-4
    manager_title: str  # level 5
    senior_manager_title: str  # level 6
    director_title: str  # level 7


DEPARTMENTS = (
    Department(
        "Engineering",
        "Technology",
        96,
        (
            "Python",
            "Go",
            "Kubernetes",
            "System design",
            "Code review",
            "Cloud architecture",
            "Testing",
            "Incident management",
            "Security",
            "API design",
            "Performance tuning",
        ),
        (
            "Associate Software Engineer",
            "Software Engineer",
            "Software Engineer II",
            "Senior Software Engineer",
        ),
        "Engineering Manager",
        "Senior Engineering Manager",
        "Director of Engineering",
    ),
    Department(
        "Product",
        "Technology",
        26,
        (
            "Product discovery",
            "Roadmapping",
            "User research",
            "Prioritization",
            "Stakeholder management",
            "Product analytics",
            "Pricing",
        ),
        (
            "Associate Product Manager",
            "Product Manager",
            "Product Manager II",
            "Senior Product Manager",
        ),
        "Group Product Manager",
        "Head of Product",
        "Director of Product",
    ),
    Department(
        "Data",
        "Technology",
        30,
        (
            "SQL",
            "Machine learning",
            "Statistics",
            "Data modeling",
            "Python",
            "Experimentation",
            "Data visualization",
            "Forecasting",
        ),
        ("Junior Data Analyst", "Data Analyst", "Data Scientist", "Senior Data Scientist"),
        "Data Science Manager",
        "Head of Data Science",
        "Director of Data",
    ),
    Department(
        "Sales",
        "Commercial",
        48,
        (
            "Negotiation",
            "Prospecting",
            "Enterprise sales",
            "Forecasting",
            "Account planning",
            "Public speaking",
            "Discovery calls",
            "Salesforce",
        ),
        (
            "Sales Development Representative",
            "Account Executive",
            "Senior Account Executive",
            "Enterprise Account Executive",
        ),
        "Sales Manager",
        "Regional Sales Director",
        "VP Sales",
    ),
    Department(
        "Marketing",
        "Commercial",
        26,
        (
            "Content strategy",
            "SEO",
            "Brand",
            "Campaign analytics",
            "Public speaking",
            "Copywriting",
            "Events",
            "Product marketing",
        ),
        (
            "Marketing Associate",
            "Marketing Specialist",
            "Marketing Manager",
            "Senior Marketing Manager",
        ),
        "Marketing Team Lead",
        "Head of Marketing",
        "Director of Marketing",
    ),
    Department(
        "Customer Success",
        "Commercial",
        34,
        (
            "Onboarding",
            "Renewals",
            "Customer empathy",
            "Escalation handling",
            "Account planning",
            "Training design",
            "Zendesk",
        ),
        (
            "Support Associate",
            "Customer Success Manager",
            "Senior Customer Success Manager",
            "Principal Customer Success Manager",
        ),
        "Customer Success Team Lead",
        "Head of Customer Success",
        "Director of Customer Success",
    ),
    Department(
        "Finance",
        "Operations",
        20,
        (
            "Financial modeling",
            "Budgeting",
            "Forecasting",
            "Excel",
            "Audit",
            "Stakeholder management",
            "Revenue accounting",
        ),
        (
            "Finance Associate",
            "Financial Analyst",
            "Senior Financial Analyst",
            "Finance Business Partner",
        ),
        "Finance Manager",
        "Head of FP&A",
        "Director of Finance",
    ),
    Department(
        "People",
        "Operations",
        18,
        (
            "Recruiting",
            "Coaching",
            "Employment law",
            "Compensation",
            "Facilitation",
            "Conflict resolution",
            "Workday",
        ),
        (
            "People Operations Associate",
            "People Partner",
            "Senior People Partner",
            "Lead People Partner",
        ),
        "People Operations Manager",
        "Head of People Operations",
        "Director of People",
    ),
    Department(
        "Legal",
        "Operations",
        10,
        (
            "Contract negotiation",
            "Privacy law",
            "Compliance",
            "Negotiation",
            "Risk assessment",
            "Employment law",
        ),
        ("Legal Assistant", "Paralegal", "Legal Counsel", "Senior Legal Counsel"),
        "Legal Team Lead",
        "Deputy General Counsel",
        "General Counsel",
    ),
)
DIVISION_HEADS = {
    "Technology": "Chief Technology Officer",
    "Commercial": "Chief Revenue Officer",
    "Operations": "Chief Operating Officer",
}


@dataclass
class Employee:
    id: str
    first_name: str
    last_name: str
    level: int
    job_title: str
    department: str
    division: str
    location: Location
    manager: Employee | None
    hire_date: date
    preferred_name: str = ""
    email: str = ""
    status: str = "Active"
    termination_date: date | None = None
    skills: list[str] = field(default_factory=list)
    interests: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)
    ability: float = 0.0  # latent performance, so that a person's ratings correlate over cycles

    def row(self) -> dict[str, str]:
        return {
            "id": self.id,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "preferred_name": self.preferred_name,
            "email": self.email,
            "job_title": self.job_title,
            "department": self.department,
            "division": self.division,
            "location": self.location.city,
            "timezone": self.location.timezone,
            "manager_id": self.manager.id if self.manager else "",
            "hire_date": self.hire_date.isoformat(),
            "status": self.status,
            "termination_date": self.termination_date.isoformat() if self.termination_date else "",
            "level": str(self.level),
            "skills": ";".join(self.skills),
            "interests": ";".join(self.interests),
            "languages": ";".join(self.languages),
        }


def _ascii(text: str) -> str:
    """An email-safe spelling: Łukasz -> lukasz, Weiß -> weiss, O'Connor -> oconnor."""
    text = text.replace("ß", "ss").replace("ł", "l").replace("Ł", "L").replace("ø", "o")
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum())


class Company:
    """Builds the company top-down so every manager exists before their reports."""

    def __init__(self, seed: int, size: int) -> None:
        self.rng = random.Random(seed)
        self.size = size
        self.people: list[Employee] = []
        self.emails: set[str] = set()

    # -- people ----------------------------------------------------------------------------
    def hire(
        self,
        level: int,
        title: str,
        department: str,
        division: str,
        manager: Employee | None,
        location: Location | None = None,
    ) -> Employee:
        rng = self.rng
        if location is None:
            # most of a team sits with its manager; the rest is spread over the offices
            location = (
                manager.location
                if manager is not None and rng.random() < 0.7
                else rng.choice(LOCATIONS)
            )
        first, last = rng.choice(location.first_names), rng.choice(location.last_names)
        # senior people joined earlier; associates within the last two years
        years = max(0.1, rng.uniform(0.2, 2.0) + (level - 1) * rng.uniform(0.4, 1.2))
        hire_date = TODAY - timedelta(days=int(years * 365))
        if manager is not None and hire_date < date(2012, 3, 1):
            hire_date = date(2012, 3, 1) + timedelta(days=rng.randrange(0, 400))
        person = Employee(
            id=f"E{1001 + len(self.people)}",
            first_name=first,
            last_name=last,
            level=level,
            job_title=title,
            department=department,
            division=division,
            location=location,
            manager=manager,
            hire_date=hire_date,
            # people who were promoted tend to be rated a little higher
            ability=rng.gauss(0.08 * (level - 3), 0.75),
        )
        person.preferred_name = NICKNAMES.get(first, "") if rng.random() < 0.5 else ""
        person.email = self._email(person)
        person.languages = self._languages(location)
        self.people.append(person)
        return person

    def _email(self, person: Employee) -> str:
        base = f"{_ascii(person.first_name)}.{_ascii(person.last_name)}"
        candidate, n = base, 1
        while candidate in self.emails:
            n += 1
            candidate = f"{base}{n}"
        self.emails.add(candidate)
        return f"{candidate}@{DOMAIN}"

    def _languages(self, location: Location) -> list[str]:
        languages = list(location.languages)
        if "English" not in languages:
            languages.append("English")
        if self.rng.random() < 0.15:
            extra = self.rng.choice(("French", "Spanish", "German", "Portuguese", "Mandarin"))
            if extra not in languages:
                languages.append(extra)
        return languages

    # -- structure -------------------------------------------------------------------------
    def build(self) -> list[Employee]:
        rng = self.rng
        berlin = LOCATIONS[0]
        ceo = self.hire(9, "Chief Executive Officer", "Executive", "Corporate", None, berlin)
        ceo.hire_date = date(2012, 2, 1)  # the founder
        heads = {
            division: self.hire(8, title, "Executive", division, ceo)
            for division, title in DIVISION_HEADS.items()
        }
        scale = self.size / (sum(d.size for d in DEPARTMENTS) + 4)
        for dept in DEPARTMENTS:
            target = max(6, round(dept.size * scale))
            director = self.hire(
                7, dept.director_title, dept.name, dept.division, heads[dept.division]
            )
            # teams of 4-7 under managers (level 5); large departments add senior managers (6)
            teams = max(1, round((target - 1) / 6))
            groups = max(1, teams // 3) if teams >= 4 else 0
            seniors = [
                self.hire(6, dept.senior_manager_title, dept.name, dept.division, director)
                for _ in range(groups)
            ]
            remaining = target - 1 - groups - teams
            managers = [
                self.hire(
                    5,
                    dept.manager_title,
                    dept.name,
                    dept.division,
                    seniors[i % len(seniors)] if seniors else director,
                )
                for i in range(teams)
            ]
            for i in range(max(remaining, teams)):
                manager = managers[i % len(managers)]
                level = rng.choices((1, 2, 3, 4), weights=(2, 4, 4, 3))[0]
                self.hire(level, dept.ic_titles[level - 1], dept.name, dept.division, manager)
        self._skills()
        self._leavers()
        return self.people

    def _skills(self) -> None:
        """Guides (level 5+) offer department and leadership skills; juniors want them."""
        rng = self.rng
        pools = {d.name: d.skills for d in DEPARTMENTS}
        pools["Executive"] = ("Strategic thinking", "Fundraising", "Public speaking", "Negotiation")
        every_skill = sorted({s for pool in pools.values() for s in pool})
        for person in self.people:
            pool = pools[person.department]
            count = min(len(pool), 2 + person.level // 2)
            skills = rng.sample(pool, count)
            if person.level >= 5:
                skills += rng.sample(LEADERSHIP, 2 + (person.level >= 7))
            person.skills = list(dict.fromkeys(skills))
            wanted: list[str] = []
            missing = [s for s in pool if s not in person.skills]
            if person.level <= 4:
                wanted += rng.sample(missing, min(len(missing), rng.randint(1, 2)))
                if person.level >= 3 or rng.random() < 0.3:
                    wanted.append(rng.choice(LEADERSHIP))
                if rng.random() < 0.4:  # curiosity about another department's craft
                    other = [s for s in every_skill if s not in pool]
                    wanted.append(rng.choice(other))
            else:
                wanted += rng.sample(
                    (
                        "Strategic thinking",
                        "Executive presence",
                        "Board reporting",
                        "Change management",
                        "Coaching",
                    ),
                    2,
                )
            person.interests = [w for w in dict.fromkeys(wanted) if w not in person.skills]

    def _leavers(self) -> None:
        """A few individual contributors left this year; a few are on leave."""
        rng = self.rng
        individual = [p for p in self.people if p.level <= 4 and p.hire_date < date(2025, 6, 1)]
        for person in rng.sample(individual, 9):
            person.status = rng.choice(("Terminated", "Terminated", "Resigned"))
            person.termination_date = date(2026, 1, 15) + timedelta(days=rng.randrange(0, 270))
        active = [p for p in individual if p.termination_date is None]
        for person in rng.sample(active, 4):
            person.status = "On leave"


def reviews(people: Sequence[Employee], seed: int) -> list[dict[str, str]]:
    """Three completed half-year cycles, 1-5 ratings; everyone employed through the cycle."""
    rng = random.Random(seed + 1)
    rows = []
    for cycle, (hired_by, (year, month)) in CYCLES.items():
        for person in people:
            if person.hire_date > hired_by or person.level == 9:
                continue  # too new to review; the CEO is reviewed by the board, not here
            completed = datetime.combine(
                date(year, month, rng.randint(5, 28)),
                time(rng.randint(8, 17), rng.choice((0, 15, 30, 45))),
            )
            if person.termination_date and person.termination_date <= completed.date():
                continue
            raw = 3.2 + person.ability + rng.gauss(0.0, 0.6)
            rating = min(5, max(1, round(raw)))
            rows.append(
                {
                    "employee_id": person.id,
                    "cycle": cycle,
                    "rating": str(rating),
                    "rating_scale_max": "5",
                    "completed_at": completed.isoformat() + "Z",
                }
            )
    return rows


def write(path: Path, header: Sequence[str], rows: Sequence[dict[str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def generate(out: Path, seed: int = SEED, size: int = SIZE) -> tuple[Path, Path]:
    """Write ``people.csv`` and ``reviews.csv`` into ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    people = Company(seed, size).build()
    people_path, reviews_path = out / "people.csv", out / "reviews.csv"
    write(people_path, PEOPLE_HEADER, [p.row() for p in people])
    write(reviews_path, REVIEWS_HEADER, reviews(people, seed))
    return people_path, reviews_path


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent, help="target folder")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--size", type=int, default=SIZE, help="rough number of employees")
    args = parser.parse_args(argv)
    for path in generate(args.out, args.seed, args.size):
        print(path)


if __name__ == "__main__":
    main()
