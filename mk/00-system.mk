# System packages, from Debian, installed only when missing.
APT_PACKAGES := binutils cmake g++ make pkg-config libboost-dev python3-venv zlib1g-dev

.PHONY: setup-system
SETUP_TARGETS += setup-system
setup-system:
	@bash $(ROOT)/scripts/setup-system.sh $(APT_PACKAGES)
