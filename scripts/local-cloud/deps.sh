#!/usr/bin/env bash
# The Debian 12 packages of the local KVM@TACC (scripts/local-cloud.sh), installed by system-deps.sh (only what
# is missing; daemons kept from starting by a policy-rc.d that answers 101). Why each group:
#   glance, placement-api, nova-*           the image, placement and compute APIs and services (Zed, 2022.2)
#   nova-compute-qemu                       nova-compute's libvirt+qemu flavour (TCG here: no VT-x/AMD-V)
#   neutron-server, neutron-*-agent         networking: ML2 with linuxbridge, DHCP, L3 (routers, floating IPs),
#                                           metadata; linuxbridge because the kernel has no openvswitch module
#   rabbitmq-server                         oslo.messaging's RPC between the services (no broker-less option)
#   mariadb-server                          one SQL server for six databases written by several processes at once
#                                           (sqlite for these is untried: docs/local-cloud.md)
#   qemu-utils                              qemu-img, for the small test image
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
exec bash "$HERE/../system-deps.sh" \
  glance placement-api nova-api nova-conductor nova-scheduler nova-compute nova-compute-qemu \
  neutron-server neutron-linuxbridge-agent neutron-dhcp-agent neutron-l3-agent neutron-metadata-agent \
  rabbitmq-server mariadb-server qemu-utils python3-openstackclient
