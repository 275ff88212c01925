"""The node stack's API path against the local KVM@TACC, as the project's member user (what Terraform's provider
will do): keypair, security group (ssh from the outside namespace's address), port on sharednet1, server with the reservation flavor
and CC-Ubuntu24.04, floating IP from `public`; checks the port bound to the compute host and the floating IP's DNAT
in the router's namespace; then deletes all of it. With Nova's fake driver no VM runs, so the port stays DOWN.
usage: smoke.py KEYSTONE_STATE CLOUD_STATE          (run by `npm run cloud:smoke`)
"""
import json
import os
import subprocess
import sys
import time

import openstack

ks_dir, cloud_dir = sys.argv[1:3]
ks = json.load(open(os.path.join(ks_dir, "env.json")))
cloud = json.load(open(os.path.join(cloud_dir, "cloud.json")))
conn = openstack.connect(auth_url=ks["authUrl"], username=ks["userName"], password=ks["password"],
                         project_id=ks["projectId"], user_domain_name="Default", region_name="KVM@TACC")
t0 = time.time()


def step(msg):
    print("%6.1fs %s" % (time.time() - t0, msg), flush=True)


made = []
try:
    kp = conn.compute.create_keypair(name="smoke-key")
    made.append(lambda: conn.compute.delete_keypair(kp))
    sg = conn.network.create_security_group(name="smoke-sg")
    made.append(lambda: conn.network.delete_security_group(sg))
    conn.network.create_security_group_rule(security_group_id=sg.id, direction="ingress", protocol="tcp",
                                            port_range_min=22, port_range_max=22, remote_ip_prefix=f"{cloud['outsideAddress']}/32")
    port = conn.network.create_port(name="smoke-port", network_id=cloud["sharednet1"], security_group_ids=[sg.id])
    made.append(lambda: conn.network.delete_port(port) if conn.network.find_port(port.id) else None)
    step(f"keypair, security group, port {port.fixed_ips[0]['ip_address']}")
    server = conn.compute.create_server(name="smoke-node", flavor_id=cloud["reservationId"], image_id=cloud["imageId"],
                                        networks=[{"port": port.id}], key_name=kp.name)
    made.append(lambda: (conn.compute.delete_server(server), conn.compute.wait_for_delete(server, wait=120)))
    server = conn.compute.wait_for_server(server, wait=300)
    step(f"server {server.status}")
    fip = conn.network.create_ip(floating_network_id=cloud["public"], port_id=port.id)
    made.append(lambda: conn.network.delete_ip(fip))
    step(f"floating ip {fip.floating_ip_address} -> {fip.fixed_ip_address}")
    nat = ""
    for _ in range(60):  # the L3 agent applies it asynchronously
        nat = subprocess.run(["ip", "netns", "exec", f"qrouter-{cloud['routerId']}", "iptables-save", "-t", "nat"],
                             capture_output=True, text=True).stdout
        if f"-d {fip.floating_ip_address}/32 -j DNAT --to-destination {fip.fixed_ip_address}" in nat:
            break
        time.sleep(1)
    else:
        raise SystemExit(f"no DNAT for {fip.floating_ip_address} in qrouter-{cloud['routerId']}")
    step("DNAT for the floating IP is in the router's namespace")
finally:
    for undo in reversed(made):
        undo()
    step("all deleted")
