"""Fixture rows for the real WebOps panel, run once into the template database with
`manage.py shell < seed_fixtures.py` by xtask/src/panel.rs. Written for this project.

Every value comes from the JSON in the environment variable FIXTURE_SPEC (built from the
constants in panel.rs, the single source of truth). It refuses to run twice on one database.
"""

import datetime
import json
import os

from django.contrib.auth.models import User
from django.utils import timezone

from apps.core.auth.models import TwoFactorAuth
from apps.core.utils.encryption import encrypt_password
from apps.databases.models import Database
from apps.deployments.models import ApplicationDeployment, DeploymentLog

spec = json.loads(os.environ["FIXTURE_SPEC"])

if User.objects.filter(username=spec["alice"]["username"]).exists():
    raise SystemExit("fixtures already seeded")

alice = User.objects.create_user(
    spec["alice"]["username"],
    email="alice@example.invalid",
    password=spec["alice"]["password"],
)
bob = User.objects.create_user(
    spec["bob"]["username"], email="bob@example.invalid", password=spec["bob"]["password"]
)
# A fixed TOTP secret (base32, stored encrypted by the model); nobody completes bob's 2nd step.
two_factor = TwoFactorAuth(user=bob, is_enabled=True, backup_codes=[])
two_factor.secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
two_factor.save()

# Never set a domain: system/health would issue a real HTTP GET to it.
d = spec["deployment"]
app = ApplicationDeployment.objects.create(
    name=d["name"],
    status="running",
    repo_url=d["repo_url"],
    branch="main",
    project_type="django",
    domain="",
    port=None,
    deployed_by=alice,
    env_vars=d["env_vars"],
)

# created_at defaults to now; spread the rows one minute apart, ten minutes ago, so their
# order is unambiguous.
base = timezone.now() - datetime.timedelta(minutes=10)
for i, log in enumerate(spec["logs"]):
    row = DeploymentLog.objects.create(deployment=app, level=log["level"], message=log["message"])
    DeploymentLog.objects.filter(pk=row.pk).update(
        created_at=base + datetime.timedelta(minutes=i), updated_at=base + datetime.timedelta(minutes=i)
    )

ports = {"postgresql": 5432, "redis": 6379}
for db in spec["databases"]:
    kwargs = dict(
        name=db["name"],
        db_type=db["db_type"],
        host="localhost",
        port=ports.get(db["db_type"]),
        username="fixture_user" if db["db_type"] == "postgresql" else "",
        password=encrypt_password(spec["db_password"]),
        database_name="fixture" if db["db_type"] == "postgresql" else "0",
        deployment=app if db["deployment"] == app.name else None,
    )
    Database.objects.create(**kwargs)

print("fixtures seeded")
