#!/usr/bin/env python3
"""Copy the RFC 9383 Appendix C vector for P256-SHA256-HKDF-SHA256-HMAC-SHA256
into tests/vectors/rfc9383_p256.txt (the format of tests/engine/vector_file.h).

Usage: scripts/extract_rfc9383_vectors.py [path/to/rfc9383.txt] > tests/vectors/rfc9383_p256.txt

Values wrap across lines in the RFC; this joins them, decodes them, and
checks the copy against itself (TT must be the length-prefixed
concatenation of the other values) before printing anything.
"""
import re
import struct
import sys

SUITE = "SPAKE2+-P256-SHA256-HKDF-SHA256-HMAC-SHA256 Test Vectors"
KEYS = ["w0", "w1", "L", "x", "shareP", "y", "shareV", "Z", "V", "TT",
        "K_main", "K_confirmP", "K_confirmV", "HMAC(K_confirmP, shareV)",
        "HMAC(K_confirmV, shareP)", "K_shared"]


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/specs/rfc9383.txt"
    text = open(path, encoding="utf-8").read()
    # Appendix C: blocks start with "[Context=b'...']"; a bytes literal may
    # wrap, so join continuation lines first.
    start = text.index("Appendix C.  Test Vectors\n\n")
    body = text[start:]
    blocks = re.split(r"\n\s*\n(?=\s*\[Context=)", body)
    block = next(b for b in blocks if "[Context=b'" + SUITE[:20] in b.replace("\n", ""))
    # Join every line onto one stream, remembering line starts.
    lines = [l.strip() for l in block.splitlines() if l.strip()]
    lines = lines[lines.index(next(l for l in lines if l.startswith("[Context="))):]
    joined = []
    for l in lines:
        if joined and not re.match(r"^(\[|[A-Za-z_0-9(), ]+ = 0x)", l):
            joined[-1] += l  # continuation of the previous value
        else:
            joined.append(l)
    fields = {}
    for l in joined:
        m = re.fullmatch(r"\[(Context|idProver|idVerifier)=b'(.*)'\]", l)
        if m:
            fields[m.group(1)] = m.group(2).encode("ascii")
            continue
        m = re.fullmatch(r"(.+?) = 0x([0-9a-f]+)", l)
        if m and m.group(1) in KEYS:
            fields[m.group(1)] = bytes.fromhex(m.group(2))
    assert fields.get("Context") == SUITE.encode(), fields.get("Context")
    missing = [k for k in ["Context", "idProver", "idVerifier"] + KEYS if k not in fields]
    assert not missing, missing

    # Self-check: TT = len(Context) || Context || ... || len(w0) || w0, with
    # M and N (uncompressed) between the identities and the shares.
    tt = fields["TT"]
    def lp(b):
        return struct.pack("<Q", len(b)) + b
    pos = 0
    def take(expect=None):
        nonlocal pos
        n = struct.unpack_from("<Q", tt, pos)[0]
        v = tt[pos + 8:pos + 8 + n]
        pos += 8 + n
        if expect is not None:
            assert v == expect, (expect.hex(), v.hex())
        return v
    take(fields["Context"]); take(fields["idProver"]); take(fields["idVerifier"])
    m_point = take(); n_point = take()
    assert len(m_point) == 65 and len(n_point) == 65
    for k in ["shareP", "shareV", "Z", "V", "w0"]:
        take(fields[k])
    assert pos == len(tt)
    sizes = {"w0": 32, "w1": 32, "x": 32, "y": 32, "L": 65, "shareP": 65,
             "shareV": 65, "Z": 65, "V": 65, "K_main": 32, "K_confirmP": 32,
             "K_confirmV": 32, "HMAC(K_confirmP, shareV)": 32,
             "HMAC(K_confirmV, shareP)": 32, "K_shared": 32}
    for k, n in sizes.items():
        assert len(fields[k]) == n, (k, len(fields[k]))

    out = sys.stdout
    out.write("# RFC 9383 Appendix C: the P256-SHA256-HKDF-SHA256-HMAC-SHA256 vector,\n"
              "# copied from shared/specs/rfc9383.txt by scripts/extract_rfc9383_vectors.py.\n"
              "# Every value is hex (Context, idProver and idVerifier are the ASCII\n"
              "# strings of the RFC: %r, %r, %r).\n"
              "# Points are SEC1 uncompressed; scalars 32-byte big-endian.\n\n"
              % (fields["Context"].decode(), fields["idProver"].decode(),
                 fields["idVerifier"].decode()))
    out.write("Case P256-SHA256-HKDF-SHA256-HMAC-SHA256\n")
    for k in ["Context", "idProver", "idVerifier"] + KEYS:
        out.write("%s = %s\n" % (k, fields[k].hex()))


if __name__ == "__main__":
    main()
