"""Creates (idempotently) what KVM@TACC offers a Chameleon user, in the local cloud:

- image `CC-Ubuntu24.04` (public): CLOUD_IMAGE_DIR if set (the VM test's image dir, scripts/local-vm/image.sh:
  root.qcow2 booted with its own vmlinuz and initrd.img, uploaded as `aki`/`ari` images), else CLOUD_IMAGE (a
  bootable qcow2), else a small empty qcow2 made with qemu-img. An image from another recipe is replaced.
- network `sharednet1` (shared, flat on physnet1) with subnet `sharednet1-subnet` 10.56.0.0/22
- network `public` (external, flat on physnet `public`) with the floating range PUBLIC_CIDR (documentation
  addresses, never routed from the root namespace; the gateway PUBLIC_GW lives in the harness's netns)
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
image_dir = os.environ.get("CLOUD_IMAGE_DIR")
recipe = json.load(open(os.path.join(image_dir, "recipe.json")))["recipe"] if image_dir else None
image = conn.image.find_image(IMAGE)
if image is not None and (image.status != "active" or (recipe and image.properties.get("persist_recipe") != recipe)):
    for part in ("kernel_id", "ramdisk_id"):
        if image.properties.get(part):
            conn.image.delete_image(image.properties[part], ignore_missing=True)
    conn.image.delete_image(image)
    image = None
if image is None and image_dir:
    # Nova's libvirt driver boots kernel_id/ramdisk_id directly with os_command_line, as the VM test's qemu does.
    kernel = conn.image.create_image(name=IMAGE + "-kernel", filename=os.path.join(image_dir, "vmlinuz"),
                                     disk_format="aki", container_format="aki", visibility="public", wait=True)
    ramdisk = conn.image.create_image(name=IMAGE + "-ramdisk", filename=os.path.join(image_dir, "initrd.img"),
                                      disk_format="ari", container_format="ari", visibility="public", wait=True)
    image = conn.image.create_image(name=IMAGE, filename=os.path.join(image_dir, "root.qcow2"), disk_format="qcow2",
                                    container_format="bare", visibility="public", wait=True, kernel_id=kernel.id,
                                    ramdisk_id=ramdisk.id, persist_recipe=recipe,
                                    os_command_line="root=/dev/vda rw console=ttyS0 net.ifnames=0")
elif image is None:
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
cidr, gw = os.environ["PUBLIC_CIDR"], os.environ["PUBLIC_GW"]
net_prefix = cidr.rsplit(".", 1)[0]
public_subnet = ensure_subnet(public, "public-subnet", cidr, gateway_ip=gw, enable_dhcp=False,
                              allocation_pools=[{"start": f"{net_prefix}.10", "end": f"{net_prefix}.250"}])
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

out = {"region": "KVM@TACC", "imageId": image.id, "imageName": IMAGE, "imageRecipe": image.properties.get("persist_recipe"),
       "sharednet1": shared.id, "public": public.id, "routerId": router.id, "reservationId": flavor_id,
       "projectId": project.id,
       # The outside (docs/local-cloud.md, "Topology"): where the user's commands run, the public gateway the
       # security group's allowedCidr is, a host outside it, and the file server the dataset URL points at.
       "outsideNetns": os.environ["EXT_NS"], "outsideAddress": gw, "farNetns": os.environ["FAR_NS"],
       "farAddress": os.environ["FAR_ADDR"], "filesDir": os.path.join(state_dir, "www"),
       "filesUrl": f"http://127.0.0.1:{os.environ['FILES_PORT']}"}
tmp = out_path + ".tmp"
with open(tmp, "w") as f:
    json.dump(out, f, indent=2)
os.replace(tmp, out_path)
print(json.dumps(out))
