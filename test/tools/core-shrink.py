#!/usr/bin/env python3
"""shrink.py IN OUT CMD...: drop the pages of IN's PT_LOAD segments that CMD
(run with {} replaced by a candidate core) does not need for the same stdout
and exit status; write the smallest core found to OUT.  Kept pages become
PT_LOADs of their own (runs of adjacent pages merged); dropped ones are not
in the core at all (reads of them are refused)."""
import struct, subprocess, sys

def parse(b):
    phoff, = struct.unpack_from("<Q", b, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", b, 0x36)
    ph = []
    for i in range(phnum):
        ph.append(list(struct.unpack_from("<IIQQQQQQ", b, phoff + i * phentsize)))
    return ph

def build(b, ph, keep):
    """keep: set of (segment, page)."""
    others = [p for p in ph if p[0] != 1]
    loads = []
    for si, p in enumerate(ph):
        if p[0] != 1:
            continue
        if p[5] == 0:
            loads.append((p, 0, 0, None))
            continue
        npages = (p[5] + 4095) // 4096
        run = None
        for pg in range(npages + 1):
            if pg < npages and (si, pg) in keep:
                if run is None:
                    run = pg
                continue
            if run is not None:
                start, end = run * 4096, min(pg * 4096, p[5])
                loads.append((p, start, end - start, b[p[2] + start:p[2] + end]))
                run = None
    n = len(others) + len(loads)
    out = bytearray(b[:64])
    struct.pack_into("<QHHH", out, 0x20, 64, 0, 0, 0)  # fixed below
    struct.pack_into("<Q", out, 0x20, 64)
    struct.pack_into("<H", out, 0x36, 56)
    struct.pack_into("<H", out, 0x38, n)
    struct.pack_into("<Q", out, 0x28, 0)
    struct.pack_into("<H", out, 0x3a, 0)
    struct.pack_into("<H", out, 0x3c, 0)
    struct.pack_into("<H", out, 0x3e, 0)
    data = bytearray()
    base = 64 + 56 * n
    hdrs = []
    for p in others:
        d = b[p[2]:p[2] + p[5]]
        q = list(p); q[2] = base + len(data); hdrs.append(q); data += d
        while len(data) % 8: data += b"\0"
    for p, start, ln, d in loads:
        q = list(p)
        q[3] = p[3] + start; q[4] = p[4] + start
        if d is None:
            q[2] = base + len(data); hdrs.append(q); continue
        q[2] = base + len(data); q[5] = ln
        q[6] = ln if p[6] == p[5] else (p[6] - start if start + ln >= p[5] else ln)
        hdrs.append(q); data += d
    for q in hdrs:
        out += struct.pack("<IIQQQQQQ", *q)
    return bytes(out + data)

def main():
    src, dst, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
    b = open(src, "rb").read()
    ph = parse(b)
    tmp = dst + ".try"
    def run(core):
        open(tmp, "wb").write(core)
        p = subprocess.run([tmp if x == "{}" else x for x in cmd],
                           capture_output=True, timeout=30)
        return p.returncode, p.stdout.replace(tmp.encode(), b"CORE")
    allp = set()
    for si, p in enumerate(ph):
        if p[0] == 1:
            for pg in range((p[5] + 4095) // 4096):
                allp.add((si, pg))
    keep = set(allp)
    ref = run(build(b, ph, keep))
    print("reference:", ref[0], ref[1][:300])
    runs = 0
    def chunks(si):
        return sorted(pg for s, pg in keep if s == si)
    stack = []
    for si, p in enumerate(ph):
        pages = chunks(si)
        if pages:
            stack.append([(si, pg) for pg in pages])
    while stack:
        ch = stack.pop()
        trial = keep - set(ch)
        runs += 1
        if run(build(b, ph, trial)) == ref:
            keep = trial
        elif len(ch) > 1:
            h = len(ch) // 2
            stack.append(ch[:h]); stack.append(ch[h:])
    core = build(b, ph, keep)
    assert run(core) == ref
    open(dst, "wb").write(core)
    print("%d runs; kept %d of %d pages; %d bytes" % (runs, len(keep), len(allp), len(core)))

if __name__ == "__main__":
    main()
