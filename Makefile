# Building and installing ckpt like any Linux tool:
#
#     make                                   # cargo build --release --workspace, man pages
#     sudo make install                      # into /usr/local (PREFIX=/usr/local)
#     make install PREFIX=$HOME/.local       # or anywhere else
#     make install DESTDIR=/tmp/pkg PREFIX=/usr   # staged, for packagers
#     sudo make uninstall                    # removes exactly what install put there
#
# `install` only copies what `make` built (it never runs cargo, so it cannot rebuild with
# another profile, as root, or wait for a cargo lock another build holds); it stops with a
# message when something is missing. The man pages are generated from the --help text and
# include/ckpt.h by ckpt-man (ckpt-doc/), never written by hand.
#
# The installed ckpt finds its library in ../lib/ relative to itself (or ../lib/ckpt/):
# keep LIBDIR at $(PREFIX)/lib or $(PREFIX)/lib/ckpt, or set CKPT_LIBRARY.

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR ?= $(PREFIX)/share/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
DESTDIR ?=

CARGO ?= cargo
INSTALL ?= install

BUILD := target/release
MAN_OUT := $(BUILD)/man
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
# One man3 page per function declared in the header (what ckpt-man writes), listed here
# from the same header so that uninstall can remove them without the build tree.
API_FUNCTIONS := $(shell sed -n 's/^[a-z][a-z ]*[ *]\(ckpt_[a-z_]*\)(.*);$$/\1/p' include/ckpt.h)
MAN3_PAGES := $(addsuffix .3,$(API_FUNCTIONS))

.PHONY: all man install uninstall

all:
	$(CARGO) build --release --workspace
	$(MAKE) man

man: $(MAN_OUT)/man1/ckpt.1

# The generator carries the help text and the header compiled in: its pages are new when
# it is.
$(MAN_OUT)/man1/ckpt.1: $(BUILD)/ckpt-man
	$(BUILD)/ckpt-man $(MAN_OUT)

$(BUILD)/ckpt $(BUILD)/libckpt.so $(BUILD)/ckpt-man:
	@echo "make: $@ is missing: run make (or cargo build --release --workspace) first" >&2
	@exit 1

install: $(BUILD)/ckpt $(BUILD)/libckpt.so $(MAN_OUT)/man1/ckpt.1
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PKGCONFIGDIR) \
		$(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3
	$(INSTALL) -m 755 $(BUILD)/ckpt $(DESTDIR)$(BINDIR)/ckpt
	$(INSTALL) -m 644 $(BUILD)/libckpt.so $(DESTDIR)$(LIBDIR)/libckpt.so
	$(INSTALL) -m 644 include/ckpt.h $(DESTDIR)$(INCLUDEDIR)/ckpt.h
	$(INSTALL) -m 644 $(MAN_OUT)/man1/ckpt.1 $(DESTDIR)$(MANDIR)/man1/ckpt.1
	$(INSTALL) -m 644 $(addprefix $(MAN_OUT)/man3/,$(MAN3_PAGES)) $(DESTDIR)$(MANDIR)/man3/
	@# The paths the .pc file names are where the files end up, without DESTDIR. The
	@# -rpath lets a program built with it find libckpt.so with no LD_LIBRARY_PATH
	@# wherever PREFIX is (only /lib and /usr/lib are searched without it).
	printf '%s\n' \
		'prefix=$(PREFIX)' \
		'libdir=$(LIBDIR)' \
		'includedir=$(INCLUDEDIR)' \
		'' \
		'Name: ckpt' \
		'Description: checkpoint and restart a running process (the ckpt API)' \
		'Version: $(VERSION)' \
		'Libs: -L$${libdir} -Wl,-rpath,$${libdir} -lckpt' \
		'Cflags: -I$${includedir}' > $(DESTDIR)$(PKGCONFIGDIR)/ckpt.pc
	chmod 644 $(DESTDIR)$(PKGCONFIGDIR)/ckpt.pc

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/ckpt $(DESTDIR)$(LIBDIR)/libckpt.so \
		$(DESTDIR)$(INCLUDEDIR)/ckpt.h $(DESTDIR)$(PKGCONFIGDIR)/ckpt.pc \
		$(DESTDIR)$(MANDIR)/man1/ckpt.1 $(addprefix $(DESTDIR)$(MANDIR)/man3/,$(MAN3_PAGES))
