"""Creates (idempotently) what a Chameleon user has at CHI@TACC, in the local Keystone, and writes env.json.

- service user `swift` (admin in project `service`) for the proxy's authtoken middleware
- service `object-store` with public/internal/admin endpoints in region CHI@TACC
- project `persist-project` with user `persist-user` holding role `member`
- application credential `persist-etl` (restricted, the kind a Chameleon user creates in the GUI)
- application credential `persist-ruled` limited by access rules to one container

Secrets are generated here and only written to env.json (mode 0600); nothing is printed.
usage: ADMIN_PASSWORD=... SWIFT_SERVICE_PASSWORD=... bootstrap.py STATE_DIR KEYSTONE_URL SWIFT_URL FAULT_SWIFT_URL
(passwords in the environment, not argv, where any process could read them)
"""
import json
import os
import secrets
import sys
import time

from keystoneauth1 import session
from keystoneauth1.identity import v3
from keystoneclient.v3 import client

state_dir, auth_url, swift_url, fault_swift_url = sys.argv[1:5]
admin_password = os.environ["ADMIN_PASSWORD"]
REGION = "CHI@TACC"
RULED_CONTAINER = "object-persist-ruled"
env_path = os.path.join(state_dir, "env.json")
previous = {}
if os.path.exists(env_path):
    with open(env_path) as f:
        previous = json.load(f)


def admin_client():
    auth = v3.Password(auth_url=auth_url, username="admin", password=admin_password, project_name="admin",
                       user_domain_id="default", project_domain_id="default")
    return client.Client(session=session.Session(auth=auth), interface="public")


ks = admin_client()


def one(items, name):
    items = [i for i in items if i.name == name]
    return items[0] if items else None


def ensure_project(name):
    return one(ks.projects.list(domain="default"), name) or ks.projects.create(name=name, domain="default")


def ensure_user(name, password, project, known):
    user = one(ks.users.list(domain="default"), name)
    if user is None:
        user = ks.users.create(name=name, domain="default", password=password, default_project=project)
    elif not known:
        # env.json was lost: reset the password we can no longer read. Keystone revokes tokens issued in the
        # same second as a password change, so wait that second out before authenticating as this user.
        ks.users.update(user, password=password)
        time.sleep(1.1)
    return user


def ensure_role(name):
    return one(ks.roles.list(), name) or ks.roles.create(name=name)


service_project = ensure_project("service")
swift_password = os.environ["SWIFT_SERVICE_PASSWORD"]
swift_user = ensure_user("swift", swift_password, service_project, previous.get("swiftServicePassword") == swift_password)
ks.roles.grant(ensure_role("admin"), user=swift_user, project=service_project)

service = one([s for s in ks.services.list() if s.type == "object-store"], "swift") or \
    ks.services.create(name="swift", type="object-store")
wanted = f"{swift_url}/v1/AUTH_%(project_id)s"
for interface in ("public", "internal", "admin"):
    eps = ks.endpoints.list(service=service, interface=interface, region=REGION)
    if eps:
        # The proxy's port can change between runs (a port taken by another program): follow it.
        if eps[0].url != wanted:
            ks.endpoints.update(eps[0], url=wanted)
    else:
        ks.endpoints.create(service=service, url=wanted, interface=interface, region=REGION)

project = ensure_project("persist-project")
user_password = previous.get("password") or secrets.token_urlsafe(24)
user = ensure_user("persist-user", user_password, project, "password" in previous)
member = ensure_role("member")
ks.roles.grant(member, user=user, project=project)

# Application credentials are created by the user itself, as on Chameleon.
user_auth = v3.Password(auth_url=auth_url, user_id=user.id, password=user_password, project_id=project.id)
uks = client.Client(session=session.Session(auth=user_auth), interface="public")


def ensure_app_credential(key, name, **kwargs):
    old = previous.get(key)
    existing = one(uks.application_credentials.list(user=user.id), name)
    if existing and old and old.get("id") == existing.id:
        return old
    if existing:
        uks.application_credentials.delete(existing)
    secret = secrets.token_urlsafe(32)
    cred = uks.application_credentials.create(name=name, user=user.id, secret=secret, **kwargs)
    return {"id": cred.id, "secret": secret}


app_cred = ensure_app_credential("appCredential", "persist-etl")
storage_path = f"/v1/AUTH_{project.id}"
rules = [{"service": "object-store", "method": m, "path": p}
         for m in ("GET", "HEAD", "PUT", "POST", "DELETE")
         for p in (f"{storage_path}/{RULED_CONTAINER}", f"{storage_path}/{RULED_CONTAINER}/**")]
ruled = ensure_app_credential("ruledCredential", "persist-ruled", access_rules=rules)
ruled["container"] = RULED_CONTAINER

env = {
    "authUrl": f"{auth_url}/v3",
    "region": REGION,
    "projectId": project.id,
    "projectName": project.name,
    "userId": user.id,
    "userName": user.name,
    "password": user_password,
    "swiftUrl": f"{swift_url}/v1/AUTH_{project.id}",
    # A second proxy on the same storage, which fault-injection tests may stop (storage_url override).
    "faultSwiftUrl": f"{fault_swift_url}/v1/AUTH_{project.id}",
    "appCredential": app_cred,
    "ruledCredential": ruled,
    "adminPassword": admin_password,
    "swiftServicePassword": swift_password,
}
tmp = env_path + ".tmp"
fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
with os.fdopen(fd, "w") as f:
    json.dump(env, f, indent=2)
os.replace(tmp, env_path)
