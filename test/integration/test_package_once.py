"""The Debian package, the man pages and the bash completion (issue 16).

  test_package_once.py --pyxray BIN --python PY   exit 0 pass, 1 fail, 77 skip

Parts (each named when it cannot run):
  * scripts/package.sh --deb builds dist/pyxray_VERSION_amd64.deb from the
    tree (its own build directory under PYX_BUILD_DIR), lintian finding no
    error (package.sh fails on one);
  * the control file: Version is the one the packaged pyxray --version
    prints (Debian's spelling), Depends names exactly the packages of the
    libraries the binary links (NEEDED -> the file -> dpkg -S);
  * the files: the binary, pyxray(1) and one pyxray-COMMAND(1) for every
    command of the packaged binary's --help, each page naming every option
    of that command's --help (they come from the same text), the bash
    completion, copyright and changelog;
  * the bash completion, sourced in bash against BIN: the commands of
    --help, a command's options, the PID of a running Python for the PID
    argument, a value list (census --sort);
  * a throwaway root: an overlay over the cached fresh Debian root of this
    machine's release (scripts/portable.sh --fresh-root) in a mount
    namespace; apt-get installs the package there (its Depends from the
    archive), then the installed /usr/bin/pyxray stacks --json reads a
    fixture on the host and matches its in-process truth.
"""

import glob
import gzip
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyxtest as T  # noqa: E402

CACHE = "/var/cache/pyxray/roots"


def sh(argv, timeout=600, env=None, **kw):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=timeout, env=env, **kw)
    return p.returncode, p.stdout, p.stderr


def commands_of(main_help):
    out, on = [], False
    for line in main_help.splitlines():
        if line == "Commands:":
            on = True
            continue
        if on and not line:
            break
        if on and line.startswith("  ") and line[2:3].isalpha():
            out.append(line.split()[0])
    return out


def options_of(help_text):
    """-x and --long at the start of the help's option lines."""
    opts = []
    for line in help_text.splitlines():
        if not re.match(r"^  +-", line):
            continue
        tag = re.split(r"\s{2,}", line.strip())[0]
        opts += [w for w in re.split(r"[ ,]+", tag) if w.startswith("-")]
    return opts


def deroff(text):
    text = re.sub(r"\\f[BIRP]", "", text)
    return text.replace("\\-", "-").replace("\\e", "\\")


def compare_stacks(chk, fx, doc, what):
    """Every truth thread's function names, innermost first, are pyxray's."""
    got = {t.get("thread_id"): t for t in doc.get("threads") or []}
    bad = []
    for t in fx.truth["threads"]:
        g = got.get(t["thread_id"])
        if g is None:
            bad.append("thread %s (%s) missing" % (t["thread_id"], t["name"]))
            continue
        want = [f["function"] for f in t["frames"]]
        have = [f.get("function") for f in g.get("frames") or []]
        if t["role"] == "spinner":
            ok = have[-len(want[1:]):] == want[1:] if len(want) > 1 else True
        else:
            ok = have == want
        if not ok:
            bad.append("thread %s: want %s, got %s" % (t["name"], want, have))
    chk.ok(not bad, "%s: every thread's stack matches the truth" % what,
           "\n".join("      " + b for b in bad))


def build_deb(chk, out_dir):
    build_dir = os.path.join(os.environ.get("PYX_BUILD_DIR") or out_dir,
                             "pkg-deb")
    env = dict(os.environ, PYX_DIST_DIR=out_dir, PYX_PKG_BUILD_DIR=build_dir)
    for k in ("CFLAGS", "LDFLAGS", "CPPFLAGS", "ASAN_OPTIONS", "UBSAN_OPTIONS"):
        env.pop(k, None)
    argv = [os.path.join(T.SOURCE_DIR, "scripts/package.sh"), "--deb"]
    lintian = shutil.which("lintian") is not None
    if not lintian:
        argv.append("--no-lintian")
        T.log("  part skipped: lintian: not installed (scripts/deps.sh "
              "installs it)")
    rc, out, err = sh(argv, env=env, timeout=280)
    if not chk.ok(rc == 0, "scripts/package.sh --deb exits 0",
                  "      rc %s\n      %s" % (rc, err[-3000:])):
        return None
    if lintian:
        chk.ok("lintian: no error" in err, "lintian ran and found no error",
               "      " + err[-2000:])
    debs = glob.glob(os.path.join(out_dir, "pyxray_*_amd64.deb"))
    chk.ok(len(debs) == 1 and out.strip() == debs[0],
           "one dist/pyxray_VERSION_amd64.deb, named on stdout",
           "      %s / %r" % (debs, out))
    return debs[0] if debs else None


def check_control(chk, deb, xdir):
    rc, fields, err = sh(["dpkg-deb", "-f", deb, "Package", "Version",
                          "Architecture", "Depends"])
    f = dict(re.findall(r"^(\w+): (.*)$", fields, re.M))
    binary = os.path.join(xdir, "usr/bin/pyxray")
    rc, vout, _ = sh([binary, "--version"])
    m = re.match(r"pyxray (\S+)", vout)
    version = m.group(1).replace("-", "+").replace("_", "+") if m else None
    chk.ok(f.get("Package") == "pyxray" and f.get("Architecture") == "amd64",
           "control: Package pyxray, Architecture amd64", "      " + fields)
    chk.ok(version is not None and f.get("Version") == version and
           os.path.basename(deb) == "pyxray_%s_amd64.deb" % version,
           "control's Version and the file name are --version's (%s)"
           % version, "      control %r, file %s, --version %r"
           % (f.get("Version"), deb, vout))
    # NEEDED -> the host's file -> its package.
    rc, dyn, _ = sh(["readelf", "-d", binary])
    needed = re.findall(r"\(NEEDED\).*\[(.*)\]", dyn)
    rc, ldd, _ = sh(["ldd", binary])
    paths = dict(re.findall(r"^\s*(\S+) => (\S+)", ldd, re.M))
    want = set()
    for n in needed:
        path = paths.get(n)
        if not path:
            chk.fail("ldd resolves %s" % n, "      " + ldd)
            continue
        rc, owner, _ = sh(["dpkg", "-S", os.path.realpath(path)])
        if rc != 0:
            rc, owner, _ = sh(["dpkg", "-S", path])
        pkg = owner.split(":")[0].strip() if rc == 0 else None
        chk.ok(pkg is not None, "%s belongs to a package" % path)
        if pkg:
            want.add(pkg)
    have = set(re.findall(r"(?:^|, |\| )([a-z0-9][a-z0-9+.-]+)",
                          f.get("Depends", "")))
    chk.ok(want and want == have,
           "Depends names exactly the packages of the libraries it links",
           "      linked (NEEDED %s): %s\n      Depends: %s"
           % (needed, sorted(want), f.get("Depends")))


def check_files(chk, xdir):
    binary = os.path.join(xdir, "usr/bin/pyxray")
    chk.ok(os.access(binary, os.X_OK), "usr/bin/pyxray is executable")
    rc, main_help, _ = sh([binary, "--help"])
    cmds = commands_of(main_help)
    chk.ok(len(cmds) >= 4, "--help lists the commands", "      %s" % cmds)
    man = os.path.join(xdir, "usr/share/man/man1")
    pages = sorted(os.listdir(man)) if os.path.isdir(man) else []
    want = ["pyxray.1.gz"] + ["pyxray-%s.1.gz" % c for c in cmds]
    chk.ok(sorted(want) == pages,
           "one man page per command of --help, and pyxray(1), no other",
           "      want %s\n      have %s" % (sorted(want), pages))
    for c in cmds:
        path = os.path.join(man, "pyxray-%s.1.gz" % c)
        if not os.path.exists(path):
            continue
        with gzip.open(path, "rt") as fh:
            page = deroff(fh.read())
        rc, help_text, _ = sh([binary, c, "--help"])
        missing = [o for o in options_of(help_text if rc == 0 else "")
                   if o not in page]
        chk.ok(not missing and ("pyxray-%s -" % c) in page,
               "pyxray-%s(1) names the command and every option of its "
               "--help" % c, "      missing: %s" % missing)
    with gzip.open(os.path.join(man, "pyxray.1.gz"), "rt") as fh:
        page = deroff(fh.read())
    chk.ok(all(("pyxray-%s(1)" % c) in page for c in cmds),
           "pyxray(1) refers to every command's page")
    for rel in ("usr/share/bash-completion/completions/pyxray",
                "usr/share/doc/pyxray/copyright",
                "usr/share/doc/pyxray/changelog.gz",
                "usr/share/doc/pyxray/CHANGELOG.md.gz"):
        chk.ok(os.path.isfile(os.path.join(xdir, rel)), "%s is there" % rel)
    return cmds


def check_completion(chk, pyxray, py):
    comp = os.path.join(T.SOURCE_DIR, "scripts/completion/pyxray.bash")
    script = r'''
source "$1"
t() { COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1));
      COMPREPLY=(); _pyxray; echo "${COMPREPLY[*]}"; }
t "$2" ""
t "$2" stacks --
t "$2" census --sort ""
t "$2" stacks ""
'''
    idle = T.spawn([py, "-c", "import time; time.sleep(60)"])
    try:
        rc, out, err = sh(["bash", "-c", script, "comp", comp, pyxray],
                          timeout=60)
    finally:
        T.kill_child(idle)
    lines = out.split("\n")
    if not chk.ok(rc == 0 and len(lines) >= 4, "the completion runs in bash",
                  "      rc %s: %s" % (rc, err)):
        return
    _, main_help, _ = sh([pyxray, "--help"])
    _, stacks_help, _ = sh([pyxray, "stacks", "--help"])
    chk.ok(set(commands_of(main_help)) <= set(lines[0].split()),
           "pyxray <TAB>: the commands of --help", "      %r" % lines[0])
    longs = set(o for o in options_of(stacks_help) if o.startswith("--"))
    chk.ok(longs == set(lines[1].split()) and "--json" in longs,
           "pyxray stacks --<TAB>: the options of stacks --help",
           "      %r" % lines[1])
    chk.ok(lines[2].split() == ["bytes", "count", "retained"],
           "pyxray census --sort <TAB>: bytes count retained",
           "      %r" % lines[2])
    chk.ok(str(idle.pid) in lines[3].split(),
           "pyxray stacks <TAB>: the PID of a running Python (%d)" % idle.pid,
           "      %r" % lines[3])


def install_in_root(chk, deb, py):
    # Made by scripts/test.sh (scripts/portable.sh --fresh-root: minutes of
    # debootstrap); here only a ready one is used.
    with open("/etc/os-release") as f:
        m = re.search(r"^VERSION_CODENAME=(\S+)", f.read(), re.M)
        codename = m.group(1) if m else "unknown"
    root = os.path.join(CACHE, "fresh-" + codename)
    if not os.path.exists(os.path.join(root, ".pyxray-stamp")):
        why = ""
        try:
            with open(root + ".failed") as f:
                why = f.read().strip()
        except OSError:
            why = "%s is not made (scripts/portable.sh --fresh-root)" % root
        T.log("  part skipped: install into a throwaway root: no root: %s"
              % why)
        return False
    work = T.tmpdir()
    shutil.copy(deb, os.path.join(work, "pyxray.deb"))
    with T.Fixture(py) as fx:
        script = r'''
set -e
root=$1 w=$2 pid=$3
mount -t tmpfs tmpfs "$w/ovl"
mkdir "$w/ovl/upper" "$w/ovl/work" "$w/ovl/merged"
m=$w/ovl/merged
mount -t overlay overlay -o "lowerdir=$root,upperdir=$w/ovl/upper,workdir=$w/ovl/work" "$m"
mount --bind /proc "$m/proc"
mount --bind /dev "$m/dev"
mkdir -p "$m/pkg"
mount --bind "$w" "$m/pkg"
cp /etc/resolv.conf /etc/hosts "$m/etc/" 2>/dev/null || true
export DEBIAN_FRONTEND=noninteractive PATH=/usr/sbin:/usr/bin:/sbin:/bin
if ! chroot "$m" apt-get update -qq > "$w/apt.log" 2>&1; then
	echo "NO-NETWORK: $(tail -n 2 "$w/apt.log")"; exit 0
fi
chroot "$m" apt-get install -y -qq --no-install-recommends /pkg/pyxray.deb >> "$w/apt.log" 2>&1 ||
	{ echo "INSTALL-FAILED"; tail -n 20 "$w/apt.log"; exit 1; }
chroot "$m" dpkg-query -W -f='${Status}\n' pyxray
chroot "$m" /usr/bin/pyxray stacks "$pid" --json > "$w/stacks.json" 2> "$w/stacks.err" ||
	{ echo "STACKS-FAILED rc $?: $(cat "$w/stacks.err")"; exit 1; }
echo DONE
'''
        os.mkdir(os.path.join(work, "ovl"))
        rc, out, err = sh(["unshare", "--mount", "--propagation", "private",
                           "bash", "-c", script, "inst", root, work,
                           str(fx.pid)], timeout=240)
        if "NO-NETWORK" in out:
            T.log("  part skipped: install into a throwaway root: apt-get "
                  "update failed (no network?): %s" % out.strip())
            return False
        if not chk.ok(rc == 0 and "DONE" in out and
                      "install ok installed" in out,
                      "apt-get install ./pyxray_*.deb in a fresh %s root "
                      "(overlay), then pyxray stacks from there" % codename,
                      "      rc %s\n      %s\n      %s" % (rc, out[-3000:],
                                                         err[-2000:])):
            return True
        try:
            with open(os.path.join(work, "stacks.json")) as f:
                import json
                doc = json.load(f)
        except (OSError, ValueError) as e:
            chk.fail("the installed pyxray's stacks --json is JSON", str(e))
            return True
        compare_stacks(chk, fx, doc, "installed pyxray stacks --json")
    return True


def main():
    args = T.parse_args(__doc__)
    chk = T.Checker("package")
    for tool in ("dpkg-deb", "dpkg-shlibdeps", "cmake", "readelf"):
        if shutil.which(tool) is None:
            T.skip("-", "", "%s not found (scripts/deps.sh installs it)"
                   % tool)
    py = T.find_dwarf_python()
    out_dir = T.tmpdir()
    try:
        deb = build_deb(chk, out_dir)
        if deb:
            xdir = os.path.join(out_dir, "x")
            rc, _, err = sh(["dpkg-deb", "-x", deb, xdir])
            if chk.ok(rc == 0, "dpkg-deb -x", "      " + err):
                check_control(chk, deb, xdir)
                check_files(chk, xdir)
                if py:
                    install_in_root(chk, deb, py)
                else:
                    T.log("  part skipped: install into a root: no Python "
                          "with DWARF for the fixture")
        if py:
            check_completion(chk, args.pyxray, py)
    finally:
        T.cleanup()
    return chk.finish()


if __name__ == "__main__":
    sys.exit(main())
