"""Creates (idempotently) what KVM@TACC offers a Chameleon user, in the local cloud:

- image `CC-Ubuntu24.04` (public): CLOUD_IMAGE if set, else a small empty qcow2 made with qemu-img
- network `sharednet1` (shared, flat on physnet1) with subnet `sharednet1-subnet` 10.56.0.0/22
- network `public` (external, flat on physnet `public`) with the floating range 203.0.113.0/24 (TEST-NET-3:
  documentation addresses, never routed from the root namespace; the gateway .1 lives in the harness's netns)
- router `sharednet1-router` between them
- the "reservation": a private flavor whose id is a UUID, with access for persist-project (as Blazar does)
Writes STATE_DIR/cloud.json (ids a test needs). Credentials come from the OS_* environment (admin-openrc).
usage: resources.py STATE_DIR PROJECT_NAME
"""
import json
import os
import subprocess
import sys
import uuid

import openstack

state_dir, project_name = sys.argv[1:3]
conn = openstack.connect()  # OS_* from the environment
out_path = os.path.join(state_dir, "cloud.json")
previous = json.load(open(out_path)) if os.path.exists(out_path) else {}

IMAGE = "CC-Ubuntu24.04"
image = conn.image.find_image(IMAGE)
if image is None or image.status != "active":
    if image is not None:
        conn.image.delete_image(image)
    path = os.environ.get("CLOUD_IMAGE") or os.path.join(state_dir, "small.qcow2")
    if not os.environ.get("CLOUD_IMAGE") and not os.path.exists(path):
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", path, "1G"], check=True)
    image = conn.image.create_image(name=IMAGE, filename=path, disk_format="qcow2", container_format="bare",
                                    visibility="public", wait=True)

def ensure_net(name, **kw):
    return conn.network.find_network(name) or conn.network.create_network(name=name, **kw)

def ensure_subnet(net, name, cidr, **kw):
    return conn.network.find_subnet(name) or conn.network.create_subnet(
        name=name, network_id=net.id, ip_version=4, cidr=cidr, **kw)

shared = ensure_net("sharednet1", shared=True, provider_network_type="flat", provider_physical_network="physnet1")
shared_subnet = ensure_subnet(shared, "sharednet1-subnet", "10.56.0.0/22", gateway_ip="10.56.0.1",
                              dns_nameservers=[], enable_dhcp=True)
public = ensure_net("public", is_router_external=True, provider_network_type="flat",
                    provider_physical_network="public")
public_subnet = ensure_subnet(public, "public-subnet", "203.0.113.0/24", gateway_ip="203.0.113.1",
                              enable_dhcp=False,
                              allocation_pools=[{"start": "203.0.113.10", "end": "203.0.113.250"}])
router = conn.network.find_router("sharednet1-router")
if router is None:
    router = conn.network.create_router(name="sharednet1-router", external_gateway_info={"network_id": public.id})
    conn.network.add_interface_to_router(router, subnet_id=shared_subnet.id)

project = conn.identity.find_project(project_name)
flavor_id = previous.get("reservationId")
flavor = conn.compute.find_flavor(flavor_id) if flavor_id else None
if flavor is None:
    flavor_id = str(uuid.uuid4())
    flavor = conn.compute.create_flavor(id=flavor_id, name=f"reservation:{flavor_id}", ram=2048, vcpus=2, disk=20,
                                        is_public=False)
    conn.compute.flavor_add_tenant_access(flavor, project.id)

out = {"region": "KVM@TACC", "imageId": image.id, "imageName": IMAGE, "sharednet1": shared.id,
       "public": public.id, "routerId": router.id, "reservationId": flavor_id, "projectId": project.id}
tmp = out_path + ".tmp"
with open(tmp, "w") as f:
    json.dump(out, f, indent=2)
os.replace(tmp, out_path)
print(json.dumps(out))
