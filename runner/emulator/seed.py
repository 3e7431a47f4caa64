"""Deterministic generation of an emulated tenant from a seed.

The same seed and user count always give the same tenant: ids, names, methods, roles,
groups, apps and their secrets. The first users are fixed and named, so that examples and
tests can rely on them: two break-glass accounts, a set of administrators (one per role the
tests need), and Microsoft's familiar demo users (Adele Vance, Alex Wilber, ...). The rest are
generated with realistic mixes: members and `#EXT#` guests, synced and cloud-only, enabled
and disabled, MFA methods of every kind with a default, per-user MFA states.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from runner.emulator import authz
from runner.emulator.store import SCHEMA_VERSION, Store
from runner.emulator.wire import iso

DOMAIN = "contoso.com"
INITIAL_DOMAIN = "contoso.onmicrosoft.com"
EMERGENCY_GROUP = "Emergency Access Accounts"

PASSWORD_METHOD_ID = "28c10230-6103-485e-b985-444c60001490"
EMAIL_METHOD_ID = "3ddfcfc8-9383-446f-83cc-3ab9be4be18f"
PHONE_IDS = {
    "mobile": "3179e48a-750b-4051-897c-87b9720928f7",
    "alternateMobile": "b6332ec1-7057-4abe-9331-3d72feddfe41",
    "office": "e37fc753-ff3b-4958-9484-eaa9425c82bc",
}

DEMO_USERS = (
    ("Adele", "Vance", "Retail", "Retail Manager"),
    ("Alex", "Wilber", "Marketing", "Marketing Assistant"),
    ("Diego", "Siciliani", "HR", "HR Manager"),
    ("Grady", "Archie", "R&D", "Designer"),
    ("Henrietta", "Mueller", "R&D", "Developer"),
    ("Isaiah", "Langer", "Sales", "Sales Rep"),
    ("Johanna", "Lorenz", "Engineering", "Senior Engineer"),
    ("Joni", "Sherman", "Legal", "Paralegal"),
    ("Lee", "Gu", "Manufacturing", "Director"),
    ("Lidia", "Holloway", "Engineering", "Product Manager"),
    ("Lynne", "Robbins", "Finance", "Planner"),
    ("Megan", "Bowen", "Marketing", "Marketing Manager"),
    ("Miriam", "Graham", "Sales", "Director"),
    ("Nestor", "Wilke", "Operations", "Director"),
    ("Patti", "Fernandez", "Executive Management", "President"),
    ("Pradeep", "Gupta", "Finance", "Accountant"),
)

# Administrators used by delegated (device-code) tests: (local part, display, role template).
ADMINS = (
    ("it.admin", "IT Global Admin", authz.GLOBAL_ADMIN),
    ("pa.admin", "Privileged Authentication Admin", authz.PRIVILEGED_AUTH_ADMIN),
    ("auth.admin", "Authentication Admin", authz.AUTH_ADMIN),
    ("user.admin", "User Admin", authz.USER_ADMIN),
    ("helpdesk", "Helpdesk Admin", authz.HELPDESK_ADMIN),
    ("password.admin", "Password Admin", authz.PASSWORD_ADMIN),
    ("security.admin", "Security Admin", authz.SECURITY_ADMIN),
    ("policy.admin", "Authentication Policy Admin", authz.AUTH_POLICY_ADMIN),
    ("global.reader", "Global Reader", authz.GLOBAL_READER),
)

FIRST_NAMES = [
    "Aaliyah",
    "Aaron",
    "Abigail",
    "Adam",
    "Aiden",
    "Alana",
    "Albert",
    "Alejandro",
    "Alice",
    "Amara",
    "Amir",
    "Ana",
    "Andre",
    "Andrea",
    "Anika",
    "Anthony",
    "Aria",
    "Arjun",
    "Ava",
    "Beatriz",
    "Benjamin",
    "Bianca",
    "Brandon",
    "Camila",
    "Carlos",
    "Caroline",
    "Chen",
    "Chloe",
    "Daniel",
    "Daria",
    "David",
    "Dmitri",
    "Elena",
    "Eli",
    "Emma",
    "Erik",
    "Esther",
    "Ethan",
    "Fatima",
    "Felix",
    "Fiona",
    "Gabriel",
    "Grace",
    "Hana",
    "Hannah",
    "Hassan",
    "Hugo",
    "Ibrahim",
    "Ines",
    "Isabel",
    "Ivan",
    "Jack",
    "Jamal",
    "Jana",
    "Javier",
    "Jin",
    "Jonas",
    "Jose",
    "Julia",
    "Kai",
    "Karim",
    "Kate",
    "Kenji",
    "Laila",
    "Lars",
    "Laura",
    "Leo",
    "Lina",
    "Lucas",
    "Luis",
    "Maya",
    "Mateo",
    "Mei",
    "Mia",
    "Mohammed",
    "Nadia",
    "Naomi",
    "Nina",
    "Noah",
    "Nora",
    "Olga",
    "Oliver",
    "Omar",
    "Paula",
    "Pedro",
    "Priya",
    "Quinn",
    "Rafael",
    "Rania",
    "Ravi",
    "Rosa",
    "Ryan",
    "Sakura",
    "Samir",
    "Sara",
    "Sebastian",
    "Sofia",
    "Sven",
    "Tariq",
    "Tess",
    "Theo",
    "Uma",
    "Victor",
    "Wei",
    "Yara",
    "Yusuf",
    "Zoe",
]
LAST_NAMES = [
    "Abbott",
    "Adams",
    "Ahmed",
    "Ali",
    "Alvarez",
    "Andersen",
    "Bauer",
    "Becker",
    "Bianchi",
    "Brown",
    "Campbell",
    "Castillo",
    "Chen",
    "Costa",
    "Cruz",
    "Dang",
    "Davies",
    "Dubois",
    "Edwards",
    "Evans",
    "Fischer",
    "Fontaine",
    "Garcia",
    "Gomez",
    "Gonzalez",
    "Green",
    "Hansen",
    "Hernandez",
    "Hoffmann",
    "Horvat",
    "Hughes",
    "Ivanova",
    "Jansen",
    "Jensen",
    "Johnson",
    "Jones",
    "Kaur",
    "Khan",
    "Kim",
    "Kowalski",
    "Kumar",
    "Larsen",
    "Laurent",
    "Lee",
    "Lopez",
    "Martin",
    "Martinez",
    "Meyer",
    "Miller",
    "Moreau",
    "Muller",
    "Murphy",
    "Nguyen",
    "Nielsen",
    "Novak",
    "Okafor",
    "Olsen",
    "Ortiz",
    "Park",
    "Patel",
    "Perez",
    "Petrov",
    "Popescu",
    "Ramirez",
    "Reyes",
    "Rossi",
    "Russo",
    "Santos",
    "Schmidt",
    "Schneider",
    "Silva",
    "Singh",
    "Smith",
    "Sousa",
    "Suzuki",
    "Tanaka",
    "Taylor",
    "Thomas",
    "Torres",
    "Tran",
    "Walker",
    "Wang",
    "Weber",
    "Williams",
    "Wilson",
    "Wong",
    "Yamamoto",
    "Yilmaz",
    "Young",
    "Zhang",
    "Zimmermann",
]
DEPARTMENTS = (
    ("Sales", ("Account Executive", "Sales Rep", "Sales Manager")),
    ("Finance", ("Accountant", "Controller", "Financial Analyst")),
    ("Engineering", ("Software Engineer", "Site Reliability Engineer", "Engineering Manager")),
    ("HR", ("HR Generalist", "Recruiter", "HR Manager")),
    ("Marketing", ("Content Strategist", "Marketing Manager", "Designer")),
    ("Legal", ("Counsel", "Paralegal")),
    ("Operations", ("Operations Analyst", "Facilities Manager")),
    ("Support", ("Support Engineer", "Support Lead")),
)
CITIES = (
    ("Seattle", "US"),
    ("London", "GB"),
    ("Berlin", "DE"),
    ("Toronto", "CA"),
    ("Sydney", "AU"),
)
GUEST_DOMAINS = ("fabrikam.com", "northwindtraders.com", "adatum.com", "tailspintoys.com")
AUTHENTICATOR_DEVICES = ("iPhone 15", "iPhone 13 Pro", "Pixel 8", "Galaxy S23", "iPhone SE")
FIDO2_MODELS = (
    ("YubiKey 5 NFC", "cb69481e-8ff7-4039-93ec-0a2729a154a8"),
    ("YubiKey 5C", "ee882879-721c-4913-9775-3dfcce97072a"),
    ("Feitian ePass FIDO2", "833b721a-ff5f-4d00-bb2e-bdda3ec01e29"),
)

EPOCH = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


@dataclass(slots=True)
class _Rows:
    users: list[list[Any]] = field(default_factory=list)
    methods: list[tuple[Any, ...]] = field(default_factory=list)
    group_members: list[tuple[str, str, str]] = field(default_factory=list)
    role_members: list[tuple[str, str, str]] = field(default_factory=list)


USER_COLUMNS = (
    "id, upn, display_name, given_name, surname, mail, user_type, account_enabled, synced, "
    "department, job_title, company_name, office_location, city, country, usage_location, "
    "employee_id, mobile_phone, created, last_password_change, sessions_valid_from, "
    "per_user_mfa, preferred_method, system_preferred"
)
_COLUMN_INDEX = {name.strip(): index for index, name in enumerate(USER_COLUMNS.split(","))}


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _when(rng: random.Random, start_days: int, end_days: int) -> dt.datetime:
    """A time `start_days`..`end_days` before EPOCH (second precision)."""
    seconds = rng.randint(end_days * 86400, start_days * 86400)
    return (EPOCH - dt.timedelta(seconds=seconds)).replace(microsecond=0)


def _phone(rng: random.Random) -> str:
    return f"+1 425555{rng.randint(0, 9999):04d}"


def _secret(rng: random.Random) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789~._-"
    return "".join(rng.choice(alphabet) for _ in range(40))


class _Generator:
    def __init__(self, users: int, seed: int) -> None:
        self.count = users
        self.rng = random.Random(seed)
        self.rows = _Rows()
        self.upns: set[str] = set()
        self.role_ids = {template: _uuid(self.rng) for template, _, _ in authz.BUILTIN_ROLES}
        self.tenant_id = _uuid(self.rng)
        self.members_by_department: dict[str, list[str]] = {}
        self.user_index: dict[str, int] = {}

    def _unique_upn(self, local: str, domain: str) -> str:
        candidate = f"{local}@{domain}"
        n = 1
        while candidate.lower() in self.upns:
            n += 1
            candidate = f"{local}{n}@{domain}"
        self.upns.add(candidate.lower())
        return candidate

    def add_user(
        self,
        *,
        upn: str,
        given: str,
        surname: str,
        department: str | None,
        title: str | None,
        user_type: str = "Member",
        enabled: bool = True,
        synced: bool = False,
        mail: str | None = None,
    ) -> str:
        rng = self.rng
        user_id = _uuid(rng)
        created = _when(rng, 2400, 200)
        password_change = created + dt.timedelta(seconds=rng.randint(0, 150 * 86400))
        sessions = password_change + dt.timedelta(seconds=rng.randint(0, 30 * 86400))
        city, country = rng.choice(CITIES)
        self.user_index[user_id] = len(self.rows.users)
        self.rows.users.append(
            [
                user_id,
                upn,
                f"{given} {surname}",
                given,
                surname,
                mail if mail is not None else upn,
                user_type,
                int(enabled),
                int(synced),
                department,
                title,
                "Contoso" if user_type == "Member" else None,
                f"{rng.randint(1, 40)}/{rng.randint(1000, 3999)}",
                city,
                country,
                country,
                f"{rng.randint(10000, 99999)}" if user_type == "Member" else None,
                _phone(rng) if user_type == "Member" and rng.random() < 0.5 else None,
                iso(created),
                iso(password_change),
                iso(sessions),
                "disabled",
                None,
                1,
            ]
        )
        if department is not None:
            self.members_by_department.setdefault(department, []).append(user_id)
        return user_id

    def set_user(self, user_id: str, **values: Any) -> None:
        """Change columns of a row already generated (methods set the default method)."""
        row = self.rows.users[self.user_index[user_id]]
        for name, value in values.items():
            row[_COLUMN_INDEX[name]] = value

    def add_method(self, user_id: str, kind: str, method_id: str, data: dict[str, Any]) -> None:
        created = iso(_when(self.rng, 700, 1))
        self.rows.methods.append((user_id, method_id, kind, created, json.dumps(data)))

    def add_methods(self, user_id: str, given: str, surname: str) -> tuple[str | None, str]:
        """Give a user a realistic set of methods; returns (default method, MFA state)."""
        rng = self.rng
        if rng.random() < 0.15:
            if rng.random() < 0.4:
                self._email(user_id, given, surname)
            return None, "disabled"
        has: list[str] = []
        if rng.random() < 0.6:
            self._phone_method(user_id, "mobile")
            has.append("sms")
            if rng.random() < 0.15:
                self._phone_method(user_id, "alternateMobile")
        if rng.random() < 0.1:
            self._phone_method(user_id, "office")
            has.append("voiceOffice")
        if rng.random() < 0.65 or not has:
            self.add_method(
                user_id,
                "microsoftAuthenticator",
                _uuid(rng),
                {
                    "displayName": rng.choice(AUTHENTICATOR_DEVICES),
                    "deviceTag": "SoftwareTokenActivated",
                    "phoneAppVersion": f"6.{rng.randint(5, 9)}.{rng.randint(0, 20)}",
                },
            )
            has.append("push")
        if rng.random() < 0.15:
            self.add_method(user_id, "softwareOath", _uuid(rng), {"secretKey": None})
            has.append("oath")
        if rng.random() < 0.05:
            self.add_method(
                user_id,
                "hardwareOath",
                _uuid(rng),
                {
                    "displayName": f"Token {rng.randint(100000, 999999)}",
                    "serialNumber": f"{rng.randint(10**9, 10**10 - 1)}",
                    "manufacturer": "Contoso Tokens",
                    "model": "OTP-C200",
                    "secretKey": None,
                    "timeIntervalInSeconds": 30,
                    "status": "activated",
                },
            )
            has.append("oath")
        if rng.random() < 0.15:
            model, aaguid = rng.choice(FIDO2_MODELS)
            self.add_method(
                user_id,
                "fido2",
                _uuid(rng).replace("-", "")[:22],
                {
                    "displayName": model,
                    "aaGuid": aaguid,
                    "model": model,
                    "attestationCertificates": [f"{rng.getrandbits(160):040x}"],
                    "attestationLevel": "attested",
                },
            )
        if rng.random() < 0.4:
            self._email(user_id, given, surname)
        if rng.random() < 0.2:
            self.add_method(
                user_id,
                "windowsHelloForBusiness",
                _uuid(rng),
                {
                    "displayName": f"LAPTOP-{rng.randint(1000, 9999)}",
                    "keyStrength": "normal",
                },
            )
        if rng.random() < 0.03:
            self.add_method(
                user_id,
                "temporaryAccessPass",
                _uuid(rng),
                {
                    "temporaryAccessPass": None,
                    "startDateTime": iso(EPOCH),
                    "lifetimeInMinutes": 480,
                    "isUsableOnce": False,
                    "isUsable": False,
                    "methodUsabilityReason": "Expired",
                },
            )
        default = rng.choice(has)
        state = rng.choices(("disabled", "enabled", "enforced"), weights=(70, 10, 20))[0]
        return default, state

    def _phone_method(self, user_id: str, phone_type: str) -> None:
        self.add_method(
            user_id,
            "phone",
            PHONE_IDS[phone_type],
            {
                "phoneNumber": _phone(self.rng),
                "phoneType": phone_type,
                "smsSignInState": "notAllowedByPolicy",
            },
        )

    def _email(self, user_id: str, given: str, surname: str) -> None:
        domain = self.rng.choice(("outlook.com", "gmail.com", "proton.me"))
        self.add_method(
            user_id,
            "email",
            EMAIL_METHOD_ID,
            {"emailAddress": f"{given.lower()}.{surname.lower()}@{domain}"},
        )

    def grant_role(self, template: str, principal_id: str, principal_type: str = "user") -> None:
        self.rows.role_members.append((self.role_ids[template], principal_id, principal_type))

    def names(self) -> Iterator[tuple[str, str]]:
        rng = self.rng
        while True:
            yield rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)


def generate(store: Store, *, users: int, seed: int) -> None:
    """Fill an empty store with the tenant of `users` users made from `seed`."""
    gen = _Generator(users, seed)
    rng = gen.rng
    created = iso(EPOCH)

    # Fixed accounts: break-glass, administrators, demo users.
    breakglass = []
    for number in (1, 2):
        upn = gen._unique_upn(f"breakglass{number}", INITIAL_DOMAIN)
        user_id = gen.add_user(
            upn=upn, given="Break Glass", surname=str(number), department=None, title=None
        )
        gen.add_method(
            user_id,
            "fido2",
            _uuid(rng).replace("-", "")[:22],
            {
                "displayName": "YubiKey 5 NFC (vault)",
                "aaGuid": FIDO2_MODELS[0][1],
                "model": "YubiKey 5 NFC",
                "attestationCertificates": [],
                "attestationLevel": "attested",
            },
        )
        gen.grant_role(authz.GLOBAL_ADMIN, user_id)
        breakglass.append(user_id)
    admin_ids: dict[str, str] = {}
    for local, display, template in ADMINS:
        upn = gen._unique_upn(local, DOMAIN)
        given, _, surname = display.rpartition(" ")
        user_id = gen.add_user(
            upn=upn, given=given, surname=surname, department="IT", title=display
        )
        gen.add_method(
            user_id,
            "microsoftAuthenticator",
            _uuid(rng),
            {"displayName": "iPhone 15", "deviceTag": "SoftwareTokenActivated"},
        )
        gen.set_user(user_id, preferred_method="push", per_user_mfa="enforced")
        gen.grant_role(template, user_id)
        admin_ids[local] = user_id

    fixed = len(gen.rows.users)
    regular = max(users - fixed, 0)
    names = gen.names()
    for index in range(regular):
        if index < len(DEMO_USERS):
            given, surname, department, title = DEMO_USERS[index]
            kind = "member"
        else:
            given, surname = next(names)
            department, titles = rng.choice(DEPARTMENTS)
            title = rng.choice(titles)
            roll = rng.random()
            kind = "guest" if roll < 0.08 else "synced" if roll < 0.26 else "member"
        local = f"{given}.{surname}".lower().replace(" ", "")
        if kind == "guest":
            guest_domain = rng.choice(GUEST_DOMAINS)
            mail = f"{local}@{guest_domain}"
            upn = gen._unique_upn(f"{local}_{guest_domain}#EXT#", INITIAL_DOMAIN)
            user_id = gen.add_user(
                upn=upn,
                given=given,
                surname=surname,
                department=None,
                title=None,
                user_type="Guest",
                mail=mail,
            )
        else:
            upn = gen._unique_upn(local, DOMAIN)
            enabled = index < len(DEMO_USERS) or rng.random() >= 0.05
            user_id = gen.add_user(
                upn=upn,
                given=given,
                surname=surname,
                department=department,
                title=title,
                enabled=enabled,
                synced=kind == "synced",
            )
        default, state = gen.add_methods(user_id, given, surname)
        if default is not None or state != "disabled":
            gen.set_user(user_id, preferred_method=default, per_user_mfa=state)
        # A few privileged role holders among ordinary staff (about 1 in 150, at least 3).
        if (
            index >= len(DEMO_USERS)
            and kind != "guest"
            and (rng.random() < 1 / 150 or index in {len(DEMO_USERS), len(DEMO_USERS) + 7})
        ):
            template = rng.choice(
                (authz.USER_ADMIN, authz.SECURITY_ADMIN, authz.HELPDESK_ADMIN, authz.EXCHANGE_ADMIN)
            )
            gen.grant_role(template, user_id)

    # Groups, with nesting.
    groups: dict[str, str] = {}
    group_rows: list[tuple[Any, ...]] = []

    def add_group(name: str, description: str, *, role_assignable: bool = False) -> str:
        group_id = _uuid(rng)
        groups[name] = group_id
        nickname = "".join(ch for ch in name if ch.isalnum())
        group_rows.append((group_id, name, description, nickname, 1, int(role_assignable), created))
        return group_id

    emergency = add_group(EMERGENCY_GROUP, "Break-glass accounts: never automate against them")
    for user_id in breakglass:
        gen.rows.group_members.append((emergency, user_id, "user"))
    it_admins = add_group("IT Administrators", "Administrators", role_assignable=True)
    for user_id in admin_ids.values():
        gen.rows.group_members.append((it_admins, user_id, "user"))
    everyone = add_group("All Staff", "Every member account")
    for row in gen.rows.users:
        if row[6] == "Member" and row[0] not in breakglass:
            gen.rows.group_members.append((everyone, row[0], "user"))
    for department, _ in DEPARTMENTS:
        group_id = add_group(f"{department} Team", f"Members of {department}")
        for user_id in gen.members_by_department.get(department, []):
            gen.rows.group_members.append((group_id, user_id, "user"))
    contractors = add_group("Contractors", "All contractors (nested groups)")
    for department in ("Finance", "Engineering"):
        sub = add_group(f"{department} Contractors", f"Contractors working for {department}")
        gen.rows.group_members.append((contractors, sub, "group"))
        gen.rows.group_members.append((groups[f"{department} Team"], sub, "group"))
        members = gen.members_by_department.get(department, [])
        for user_id in members[: max(2, len(members) // 10)]:
            gen.rows.group_members.append((sub, user_id, "user"))
    leavers = add_group("Leavers 2026-Q4", "Offboarding wave")
    member_rows = [row for row in gen.rows.users if row[6] == "Member" and row[0] not in breakglass]
    for row in member_rows[len(ADMINS) :: 25][:40]:
        gen.rows.group_members.append((leavers, row[0], "user"))

    # App registrations and their service principals.
    apps: list[tuple[Any, ...]] = []

    def add_app(
        name: str, kind: str, permissions: tuple[str, ...], roles: tuple[str, ...] = ()
    ) -> None:
        client_id = _uuid(rng)
        sp_id = _uuid(rng)
        secret = _secret(rng) if kind == "confidential" else None
        apps.append((client_id, sp_id, name, kind, secret, json.dumps(list(permissions))))
        for template in roles:
            gen.grant_role(template, sp_id, "servicePrincipal")

    add_app(
        "entra-bulk-admin",
        "confidential",
        authz.RUNNER_PERMISSIONS,
        (authz.PRIVILEGED_AUTH_ADMIN,),
    )
    add_app("entra-bulk-reader", "confidential", authz.READ_ONLY_PERMISSIONS)
    add_app("entra-bulk-no-role", "confidential", authz.RUNNER_PERMISSIONS)
    add_app("entra-bulk-user-admin", "confidential", authz.RUNNER_PERMISSIONS, (authz.USER_ADMIN,))
    add_app("entra-bulk-cli", "public", authz.RUNNER_PERMISSIONS)
    add_app(
        "entra-bulk-managed-identity",
        "managed_identity",
        authz.RUNNER_PERMISSIONS,
        (authz.PRIVILEGED_AUTH_ADMIN,),
    )

    with store.transaction() as db:
        placeholders = ", ".join("?" for _ in USER_COLUMNS.split(","))
        db.executemany(
            f"INSERT INTO users ({USER_COLUMNS}) VALUES ({placeholders})", gen.rows.users
        )
        db.executemany(
            "INSERT INTO methods (user_id, id, kind, created, data) VALUES (?, ?, ?, ?, ?)",
            gen.rows.methods,
        )
        db.executemany(
            "INSERT INTO groups_ (id, display_name, description, mail_nickname, "
            "security_enabled, is_assignable_to_role, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
            group_rows,
        )
        db.executemany(
            "INSERT OR IGNORE INTO group_members (group_id, member_id, member_type) "
            "VALUES (?, ?, ?)",
            gen.rows.group_members,
        )
        db.executemany(
            "INSERT INTO roles (id, template_id, display_name, description, is_privileged) "
            "VALUES (?, ?, ?, ?, ?)",
            [
                (gen.role_ids[template], template, name, f"Built-in role {name}", int(privileged))
                for template, name, privileged in authz.BUILTIN_ROLES
            ],
        )
        db.executemany(
            "INSERT OR IGNORE INTO role_members (role_id, principal_id, principal_type) "
            "VALUES (?, ?, ?)",
            gen.rows.role_members,
        )
        db.executemany(
            "INSERT INTO apps (client_id, sp_id, name, kind, secret, permissions) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            apps,
        )
        meta = {
            "tenant_id": gen.tenant_id,
            "seed": str(seed),
            "users": str(users),
            "domain": DOMAIN,
            "initial_domain": INITIAL_DOMAIN,
            "display_name": "Contoso (emulated)",
            "created": created,
            "schema_version": SCHEMA_VERSION,
        }
        db.executemany(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", sorted(meta.items())
        )
