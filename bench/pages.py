#!/usr/bin/env python3
"""Where a running steward's resident memory is: its binary's pages by ELF section, the rest
by mapping.

    bench/pages.py PID [--symbols]     # run as root (pagemap needs CAP_SYS_ADMIN for PFNs;
                                       # the present bit alone is readable by the owner)

For each mapping of the process it reads /proc/PID/smaps (Rss, Pss, Anonymous) and, for the
mappings of the executable, /proc/PID/pagemap page by page, then counts the present pages of
each section of the ELF file (readelf -S). With --symbols it also lists the resident 64 KiB
windows of .text and .rodata with the symbols in them (nm), which is how stray
fault-around windows outside the ordered start-up code are found.
"""
import bisect
import os
import re
import struct
import subprocess
import sys

PAGE = os.sysconf("SC_PAGE_SIZE")


def sections(exe):
    out = subprocess.run(["readelf", "-SW", exe], capture_output=True, text=True, check=True).stdout
    secs = []
    for line in out.splitlines():
        m = re.match(r"\s*\[\s*\d+\]\s+(\S+)\s+(\S+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)", line)
        if not m or m.group(2) == "NOBITS" or int(m.group(3), 16) == 0:
            continue
        secs.append((m.group(1), int(m.group(3), 16), int(m.group(5), 16)))  # name, vaddr, size
    return secs


def maps(pid):
    """[(start, end, perms, offset, path, smaps fields)]"""
    res, cur = [], None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            m = re.match(r"([0-9a-f]+)-([0-9a-f]+) (\S+) ([0-9a-f]+) \S+ \d+\s*(.*)", line)
            if m:
                cur = [int(m.group(1), 16), int(m.group(2), 16), m.group(3), int(m.group(4), 16),
                       m.group(5).strip(), {}]
                res.append(cur)
            elif cur and ":" in line:
                k, v = line.split(":", 1)
                v = v.split()
                if v and v[0].isdigit():
                    cur[5][k] = int(v[0])
    return res


def present(pid, start, end):
    n = (end - start) // PAGE
    with open(f"/proc/{pid}/pagemap", "rb") as f:
        f.seek(start // PAGE * 8)
        data = f.read(n * 8)
    return [bool(struct.unpack_from("<Q", data, i * 8)[0] >> 63) for i in range(n)]


def main():
    pid = int(sys.argv[1])
    show_syms = "--symbols" in sys.argv
    exe = os.readlink(f"/proc/{pid}/exe")
    ms = maps(pid)
    base = min(m[0] - m[3] for m in ms if m[4] == exe)  # load bias (PIE: first mapping, offset 0)
    # vaddr (as in the ELF file) -> present?
    res = {}
    for start, end, perms, off, path, f in ms:
        if path != exe:
            continue
        for i, p in enumerate(present(pid, start, end)):
            res[start - base + i * PAGE] = (p, perms)
    print(f"{exe} (load bias {base:#x})")
    print(f"{'section':<22}{'size KiB':>10}{'resident KiB':>14}")
    total = 0
    for name, addr, size in sections(exe):
        first, last = addr // PAGE * PAGE, (addr + size - 1) // PAGE * PAGE
        pages = [a for a in range(first, last + PAGE, PAGE) if res.get(a, (False,))[0]]
        kib = len(pages) * PAGE // 1024
        total += kib
        print(f"{name:<22}{size // 1024:>10}{kib:>14}")
    print(f"{'(pages may be shared by two sections)':<32}{total:>14}")
    print()
    print(f"{'mapping':<48}{'Rss':>8}{'Pss':>8}{'Anon':>8}  KiB")
    tot = [0, 0, 0]
    for start, end, perms, off, path, f in ms:
        r, p, a = f.get("Rss", 0), f.get("Pss", 0), f.get("Anonymous", 0)
        tot = [tot[0] + r, tot[1] + p, tot[2] + a]
        if r:
            label = f"{perms} {os.path.basename(path) or '[anon]'} +{off:#x} {(end - start) // 1024}K"
            print(f"{label:<48}{r:>8}{p:>8}{a:>8}")
    print(f"{'total':<48}{tot[0]:>8}{tot[1]:>8}{tot[2]:>8}")

    if show_syms:
        nm = subprocess.run(["nm", "-n", "-S", "--defined-only", exe], capture_output=True,
                            text=True).stdout
        syms = []
        for line in nm.splitlines():
            p = line.split(None, 3)
            if len(p) == 4:
                syms.append((int(p[0], 16), int(p[1], 16), p[3]))
        syms.sort()
        addrs = [s[0] for s in syms]
        for name, addr, size in sections(exe):
            if name not in (".text", ".rodata", ".data.rel.ro"):
                continue
            print(f"\n{name}: resident runs of pages")
            first, last = addr // PAGE * PAGE, (addr + size - 1) // PAGE * PAGE
            a = first
            while a <= last:
                if not res.get(a, (False,))[0]:
                    a += PAGE
                    continue
                b = a
                while b + PAGE <= last and res.get(b + PAGE, (False,))[0]:
                    b += PAGE
                lo, hi = bisect.bisect_left(addrs, a), bisect.bisect_left(addrs, b + PAGE)
                inside = [s[2] for s in syms[lo:hi]]
                print(f"  {a:#x}-{b + PAGE:#x} {(b + PAGE - a) // 1024:>5} KiB  "
                      f"{len(inside)} symbols: {', '.join(x[:70] for x in inside[:3])}")
                a = b + PAGE


if __name__ == "__main__":
    main()
