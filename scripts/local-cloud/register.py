"""Registers the local KVM@TACC services in the project's Keystone, idempotently.

For each of glance, placement, nova, neutron: a service user (admin in project `service`, as Debian's and
devstack's installs do), the service, and public/internal/admin endpoints in region KVM@TACC. Endpoints follow
a changed port. Passwords come in the environment (never argv); nothing secret is printed.
usage: ADMIN_PASSWORD=... GLANCE_PASSWORD=... PLACEMENT_PASSWORD=... NOVA_PASSWORD=... NEUTRON_PASSWORD=... \
       register.py KEYSTONE_URL GLANCE_URL PLACEMENT_URL NOVA_URL NEUTRON_URL
"""
import os
import sys

from keystoneauth1 import session
from keystoneauth1.identity import v3
from keystoneclient.v3 import client

auth_url, glance_url, placement_url, nova_url, neutron_url = sys.argv[1:6]
REGION = "KVM@TACC"
auth = v3.Password(auth_url=f"{auth_url}/v3", username="admin", password=os.environ["ADMIN_PASSWORD"],
                   project_name="admin", user_domain_id="default", project_domain_id="default")
ks = client.Client(session=session.Session(auth=auth), interface="public")


def one(items, name):
    items = [i for i in items if i.name == name]
    return items[0] if items else None


if REGION not in [r.id for r in ks.regions.list()]:
    ks.regions.create(id=REGION, description="local KVM@TACC (scripts/local-cloud.sh)")
service_project = one(ks.projects.list(domain="default"), "service") or \
    ks.projects.create(name="service", domain="default")
admin_role = one(ks.roles.list(), "admin")
# Nova and Neutron call each other with a token that must carry the "service" role (Zed's service-token checks).
service_role = one(ks.roles.list(), "service") or ks.roles.create(name="service")

SERVICES = [
    ("glance", "image", glance_url),
    ("placement", "placement", placement_url),
    ("nova", "compute", nova_url),
    ("neutron", "network", neutron_url),
]
def ensure_endpoints(svc, url):
    for interface in ("public", "internal", "admin"):
        eps = ks.endpoints.list(service=svc, interface=interface, region=REGION)
        if eps:
            if eps[0].url != url:
                ks.endpoints.update(eps[0], url=url)
        else:
            ks.endpoints.create(service=svc, url=url, interface=interface, region=REGION)


# Keystone itself, in this region too: the services look up "identity" in region_name = KVM@TACC (one Keystone
# serves both sites, as Chameleon's does).
ensure_endpoints([s for s in ks.services.list() if s.type == "identity"][0], f"{auth_url}/v3")

updated = False
for name, kind, url in SERVICES:
    password = os.environ[f"{name.upper()}_PASSWORD"]
    user = one(ks.users.list(domain="default"), name)
    if user is None:
        user = ks.users.create(name=name, domain="default", password=password, default_project=service_project)
    else:
        ks.users.update(user, password=password)  # the harness's secret file is the truth
        updated = True
    ks.roles.grant(admin_role, user=user, project=service_project)
    ks.roles.grant(service_role, user=user, project=service_project)
    svc = one([s for s in ks.services.list() if s.type == kind], name) or ks.services.create(name=name, type=kind)
    ensure_endpoints(svc, url)
if updated:
    # Keystone revokes tokens issued in the same second as a password change: let that second pass.
    import time
    time.sleep(1.1)
