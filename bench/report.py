#!/usr/bin/env python3
"""report.py: turns the JSON of one bench run into Markdown, PNG plots and
the issue's targets as ratios.

    report.py --in DIR [--mode quick|full] [--seconds N] [--command CMD]
              [--docs docs/BENCHMARKS.md --plots-dir docs/bench]

Reads DIR/{setup,bulk,latency,memory,micro}.json (any may be missing; its
rows are then reported as "not measured"), writes DIR/results.json (the
inputs plus the targets), DIR/results.md and DIR/*.png. With --docs it also
writes that Markdown file (the same report, plus bench/analysis.md) and
copies the plots into --plots-dir.

Every ratio is computed from rows of the same run; nothing is hard-coded.
"""

import argparse
import datetime
import json
import os
import shutil
import sys

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:  # plots are skipped, the tables are still written
    plt = None

HERE = os.path.dirname(os.path.abspath(__file__))


def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def rows_by_name(doc):
    if not doc:
        return {}
    return {r["name"]: r for r in doc.get("rows", []) if "name" in r}


def fmt(v, prec=1):
    if v is None:
        return "–"
    if isinstance(v, (int,)) and not isinstance(v, bool):
        return str(v)
    if abs(v) >= 1000 and prec <= 1:
        return f"{v:,.0f}"
    return f"{v:.{prec}f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def get(rows, name, key):
    r = rows.get(name)
    if r is None:
        return None
    v = r.get(key)
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


# --- targets ---------------------------------------------------------------


def targets(setup, bulk, lat):
    """The issue's targets, each as (text, measured, goal, met, formula)."""
    out = []

    def add(text, value, goal, met, formula, shown=None):
        out.append(
            {
                "target": text,
                "measured": value,
                "shown": shown if shown is not None else (f"{value:.3g}×" if value is not None else "not measured"),
                "goal": goal,
                "met": met if value is not None else None,
                "formula": formula,
            }
        )

    v = ratio(get(setup, "tcpcrypt_fresh_x25519", "server_cpu_us_per_op"),
              get(setup, "tls13_full", "server_cpu_us_per_op"))
    add("server CPU per fresh tcpcrypt handshake ≤ 1/5 of a TLS 1.3 full handshake's",
        v, "≤ 0.20×", v is not None and v <= 0.2,
        "setup: tcpcrypt_fresh_x25519 ÷ tls13_full (server µs CPU per connection)")

    v = ratio(get(setup, "tcpcrypt_resumed", "rate_per_s"), get(setup, "plain_tcp", "rate_per_s"))
    add("resumed tcpcrypt connection rate ≥ 0.7 × plain TCP's", v, "≥ 0.70×",
        v is not None and v >= 0.7, "setup: tcpcrypt_resumed ÷ plain_tcp (connections per second)")

    c = ratio(get(setup, "tcpcrypt_cmac", "server_cpu_us_per_op"),
              get(setup, "tcpcrypt_fresh_x25519", "server_cpu_us_per_op"))
    v = None if c is None else (c - 1.0) * 100.0
    add("CMAC authentication adds ≤ 5 % server CPU over unauthenticated tcpcrypt", v, "≤ +5 %",
        v is not None and v <= 5.0,
        "setup: tcpcrypt_cmac ÷ tcpcrypt_fresh_x25519 − 1 (server µs CPU per connection)",
        shown=(f"{v:+.1f} %" if v is not None else "not measured"))

    v = ratio(get(setup, "tls13_cert_c128", "server_cpu_us_per_op"),
              get(setup, "tcpcrypt_x509_c128", "server_cpu_us_per_op"))
    add("batch signing at 128 concurrent clients ≥ 10 × TLS 1.3 certificate handshakes per server CPU second",
        v, "≥ 10×", v is not None and v >= 10.0,
        "setup: tls13_cert_c128 ÷ tcpcrypt_x509_c128 (server µs CPU per connection)")

    v = ratio(get(setup, "tls13_cert_rsa_c128", "server_cpu_us_per_op"),
              get(setup, "tcpcrypt_x509_rsa_c128", "server_cpu_us_per_op"))
    add("(supplementary, the paper's setting) the same with an RSA-2048 certificate", v, "–", None,
        "setup: tls13_cert_rsa_c128 ÷ tcpcrypt_x509_rsa_c128 (server µs CPU per connection)")
    out[-1]["informational"] = True
    out[-1]["met"] = None

    v = ratio(get(setup, "tls13_cert_c1", "server_cpu_us_per_op") or get(setup, "tls13_full", "server_cpu_us_per_op"),
              get(setup, "tcpcrypt_pake", "server_cpu_us_per_op"))
    add("SPAKE2+ ≥ 2 × TLS 1.3 certificate handshakes per server CPU second", v, "≥ 2×",
        v is not None and v >= 2.0, "setup: tls13_cert_c1 ÷ tcpcrypt_pake (server µs CPU per connection)")

    v = ratio(get(bulk, "tcpcrypt_aes128gcm", "mib_per_s"), get(bulk, "tls13_aes128gcm", "mib_per_s"))
    add("bulk AES-128-GCM throughput ≥ 1.0 × TLS 1.3 with the same cipher", v, "≥ 1.00×",
        v is not None and v >= 1.0, "bulk: tcpcrypt_aes128gcm ÷ tls13_aes128gcm (MiB/s)")

    a, b = get(lat, "tcpcrypt_fresh", "rtt"), get(lat, "tls13_full", "rtt")
    add("fresh in-band tcpcrypt reaches the first byte in no more round trips than TLS 1.3 full",
        None if a is None or b is None else a - b, "≤ 0 RTT more",
        a is not None and b is not None and a <= b + 0.05,
        "latency: rtt(tcpcrypt_fresh) − rtt(tls13_full)",
        shown=(f"{a:.1f} vs {b:.1f} RTT" if a is not None and b is not None else "not measured"))

    a, b = get(lat, "tcpcrypt_resumed", "rtt"), get(lat, "tls13_resumed", "rtt")
    add("resumed tcpcrypt reaches the first byte in no more round trips than TLS 1.3 resumed",
        None if a is None or b is None else a - b, "≤ 0 RTT more",
        a is not None and b is not None and a <= b + 0.05,
        "latency: rtt(tcpcrypt_resumed) − rtt(tls13_resumed)",
        shown=(f"{a:.1f} vs {b:.1f} RTT" if a is not None and b is not None else "not measured"))
    return out


# --- tables ----------------------------------------------------------------


def table(header, rows, left=1):
    """A Markdown table; the first |left| columns are left-aligned, the rest
    (numbers) right-aligned."""
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i < left else "---:" for i in range(len(header))) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(r) + " |")
    return "\n".join(lines)


def setup_tables(setup):
    if not setup:
        return "_setup_bench: not measured._\n"
    base = get(setup, "tls13_full", "server_cpu_us_per_op")
    plain_rate = get(setup, "plain_tcp", "rate_per_s")
    out = []
    sec1 = [r for r in setup.values() if r.get("section", "setup") == "setup"]
    out.append("### Connection setup (paper Table 1)\n")
    out.append(table(
        ["Row", "conn/s", "server µs CPU/conn", "client µs CPU/conn", "server CPU vs TLS 1.3 full",
         "rate vs plain TCP", "resumed"],
        [[r.get("description", r["name"]), fmt(r.get("rate_per_s"), 0), fmt(r.get("server_cpu_us_per_op")),
          fmt(r.get("client_cpu_us_per_op")), fmt(ratio(r.get("server_cpu_us_per_op"), base), 2) + "×",
          fmt(ratio(r.get("rate_per_s"), plain_rate), 2) + "×",
          f"{100.0 * r.get('server_resumed', 0) / max(1, r.get('server_ops', 1)):.0f} %"] for r in sec1]))
    sec2 = [r for r in setup.values() if r.get("section") == "auth"]
    if sec2:
        out.append("\n### Authenticated setup (paper Figure 3)\n")
        # Each row against the TLS 1.3 certificate handshake with the same
        # certificate type and (for 1 or 128 clients) the same concurrency.
        tls_c = {("p256", 1): get(setup, "tls13_cert_c1", "server_cpu_us_per_op") or base,
                 ("p256", 128): get(setup, "tls13_cert_c128", "server_cpu_us_per_op"),
                 ("rsa", 1): get(setup, "tls13_cert_rsa_c1", "server_cpu_us_per_op"),
                 ("rsa", 128): get(setup, "tls13_cert_rsa_c128", "server_cpu_us_per_op")}
        rows = []
        for r in sec2:
            cpu = r.get("server_cpu_us_per_op")
            conc = r.get("concurrency", 1)
            kind = "rsa" if "_rsa" in r["name"] else "p256"
            ref = tls_c.get((kind, 128 if conc >= 128 else 1))
            per_cpu_s = 1e6 / cpu if cpu else None
            rows.append([r.get("description", r["name"]), str(conc), fmt(r.get("rate_per_s"), 0), fmt(cpu),
                         fmt(per_cpu_s, 0), fmt(ratio(ref, cpu), 2) + "×",
                         fmt(r.get("signatures_per_conn"), 3) if r.get("signatures_per_conn") else "–"])
        out.append(table(["Row", "clients", "conn/s", "server µs CPU/conn", "conn per server CPU-second",
                          "vs TLS 1.3, same cert type and clients", "signatures/conn"], rows))
    return "\n".join(out) + "\n"


def bulk_table(bulk, doc):
    if not bulk:
        return "_bulk_bench: not measured._\n"
    rows = []
    for r in bulk.values():
        tls = bulk.get("tls13_" + r.get("aead", "")) if r["name"].startswith("tcpcrypt_") else None
        rows.append([r.get("description", r["name"]), fmt(r.get("mib_per_s"), 0),
                     fmt(r.get("server_cpu_s_per_gib"), 2), fmt(r.get("client_cpu_s_per_gib"), 2),
                     (fmt(ratio(r.get("mib_per_s"), tls.get("mib_per_s")), 2) + "×") if tls else "–",
                     fmt(r.get("mib_per_s_vs_plain_tcp"), 2) + "×" if r.get("mib_per_s_vs_plain_tcp") else "–"])
    gib = None
    for r in bulk.values():
        if r.get("bytes"):
            gib = r["bytes"] / (1 << 30)
            break
    head = f"{gib:g} GiB per row, client → server" if gib else ""
    return (head + "\n\n" if head else "") + table(
        ["Row", "MiB/s", "server CPU s/GiB", "client CPU s/GiB", "vs TLS 1.3 same AEAD", "vs plain TCP"], rows) + "\n"


def latency_table(lat, doc):
    if not lat:
        return "_latency_bench: not measured._\n"
    d = (doc or {}).get("delay_ms")
    rows = [[r.get("description", r["name"]), fmt(r.get("median_ms"), 1), fmt(r.get("rtt"), 1),
             fmt(r.get("expected_rtt"), 1) if r.get("expected_rtt") is not None else "–",
             fmt(r.get("client_cpu_ms_median"), 2), fmt(r.get("server_cpu_ms_median"), 2)] for r in lat.values()]
    head = f"One-way delay {d} ms each way through the delay proxy (1 RTT = {2 * d} ms).\n\n" if d else ""
    return head + table(["Row", "median ms", "round trips", "expected", "client CPU ms", "server CPU ms"],
                        rows) + "\n"


def memory_table(mem, doc):
    if not mem:
        return "_memory_bench: not measured._\n"
    rows = [[r.get("description", r["name"]), fmt(r.get("connections"), 0),
             fmt((r.get("bytes_per_conn") or 0) / 1024.0, 1),
             fmt((r.get("bytes_per_conn_pss") or 0) / 1024.0, 1) if r.get("bytes_per_conn_pss") is not None else "–"]
            for r in mem.values()]
    return table(["Server", "idle connections", "KiB per connection (RSS)", "KiB per connection (PSS)"], rows) + "\n"


def micro_table(micro):
    if not micro:
        return "_micro_bench: not measured._\n"
    rows = []
    for b in micro.get("benchmarks", []):
        if b.get("run_type") not in (None, "iteration") or b.get("error_occurred"):
            continue
        unit = b.get("time_unit", "ns")
        scale = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}.get(unit, 1e-3)
        manual = "manual_time" in b["name"] or "real_time" in b["name"]
        t = (b["real_time"] if manual else b["cpu_time"]) * scale
        name = b["name"].split("/iterations:")[0].replace("/manual_time", "").replace("/real_time", "")
        bps = b.get("bytes_per_second")
        rows.append([f"`{name}`", fmt(t, 2), "wall" if manual else "CPU",
                     f"{bps / 1e6:,.0f} MB/s" if bps else ""])
    return table(["Benchmark", "µs per op", "clock", "throughput"], rows) + "\n"


# --- plots -----------------------------------------------------------------


def barh(path, title, xlabel, labels, values, colors=None, annotate="{:.0f}"):
    if plt is None or not labels:
        return None
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(labels) + 1.2))
    y = list(range(len(labels)))
    ax.barh(y, values, color=colors or "#4477aa")
    ax.set_yticks(y)
    ax.set_yticklabels(labels)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    top = max(values) if values else 1
    for i, v in enumerate(values):
        ax.text(v + top * 0.01, i, annotate.format(v), va="center", fontsize=8)
    ax.set_xlim(0, top * 1.18)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return os.path.basename(path)


def color_for(name):
    if name.startswith("tls13"):
        return "#cc6677"
    if name.startswith("plain"):
        return "#999999"
    return "#4477aa"


def plots(out_dir, setup, bulk, lat, mem):
    made = []
    r = [x for x in setup.values() if x.get("server_cpu_us_per_op")]
    if r:
        made.append(barh(os.path.join(out_dir, "setup_server_cpu.png"),
                         "Server CPU per connection (lower is better)", "µs CPU per connection",
                         [x.get("description", x["name"]) for x in r], [x["server_cpu_us_per_op"] for x in r],
                         [color_for(x["name"]) for x in r]))
    r = [x for x in bulk.values() if x.get("mib_per_s")]
    if r:
        made.append(barh(os.path.join(out_dir, "bulk_throughput.png"), "Bulk throughput (higher is better)",
                         "MiB/s", [x.get("description", x["name"]) for x in r], [x["mib_per_s"] for x in r],
                         [color_for(x["name"]) for x in r]))
    r = [x for x in lat.values() if x.get("rtt") is not None]
    if r:
        made.append(barh(os.path.join(out_dir, "latency_rtt.png"),
                         "Time to the first authenticated byte (lower is better)", "round trips",
                         [x.get("description", x["name"]) for x in r], [x["rtt"] for x in r],
                         [color_for(x["name"]) for x in r], annotate="{:.1f}"))
    r = [x for x in mem.values() if x.get("bytes_per_conn")]
    if r:
        made.append(barh(os.path.join(out_dir, "memory_per_conn.png"), "Memory per idle connection (lower is better)",
                         "KiB per connection", [x.get("description", x["name"]) for x in r],
                         [x["bytes_per_conn"] / 1024.0 for x in r], [color_for(x["name"]) for x in r],
                         annotate="{:.1f}"))
    return [m for m in made if m]


# --- main ------------------------------------------------------------------


def render(docs, tgt, args, plot_files, plot_prefix, analysis):
    setup_doc, bulk_doc, lat_doc, mem_doc, micro_doc = docs
    setup, bulk, lat, mem = (rows_by_name(d) for d in docs[:4])
    machine = next((d.get("machine") for d in docs[:4] if d and d.get("machine")), "unknown")
    lines = []
    lines.append(f"Run: {datetime.date.today().isoformat()}, {args.mode} mode"
                 + (f", {args.seconds} s of measuring" if args.seconds else "") + ".\n")
    lines.append(f"Machine: {machine}.\n")
    if args.command:
        lines.append(f"Command: `{args.command}`\n")
    lines.append("## Targets\n")
    lines.append(table(["Target", "Measured", "Goal", "Met?", "How"],
                       [[t["target"], t["shown"], t["goal"],
                         "(informational)" if t.get("informational") else
                         "not measured" if t["met"] is None else ("yes" if t["met"] else "**no**"),
                         t["formula"]] for t in tgt], left=5))
    lines.append("")
    for p in plot_files:
        lines.append(f"![{p}]({plot_prefix}{p})\n")
    lines.append("## Connection setup and authenticated setup\n")
    lines.append(setup_tables(setup))
    lines.append("## Bulk throughput (paper Table 3)\n")
    lines.append(bulk_table(bulk, bulk_doc))
    lines.append("## Latency to the first authenticated byte (paper Table 2)\n")
    lines.append(latency_table(lat, lat_doc))
    lines.append("## Memory per idle connection\n")
    lines.append(memory_table(mem, mem_doc))
    lines.append("## Micro-benchmarks (Google Benchmark)\n")
    lines.append(micro_table(micro_doc))
    if analysis:
        lines.append(analysis)
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--in", dest="indir", required=True)
    ap.add_argument("--mode", default="quick")
    ap.add_argument("--seconds", type=int, default=0)
    ap.add_argument("--command", default="")
    ap.add_argument("--docs")
    ap.add_argument("--plots-dir")
    args = ap.parse_args()

    docs = [load(os.path.join(args.indir, f"{n}.json")) for n in ("setup", "bulk", "latency", "memory", "micro")]
    setup, bulk, lat, mem = (rows_by_name(d) for d in docs[:4])
    tgt = targets(setup, bulk, lat)
    plot_files = plots(args.indir, setup, bulk, lat, mem)

    with open(os.path.join(args.indir, "results.json"), "w", encoding="utf-8") as f:
        json.dump({"mode": args.mode, "command": args.command, "targets": tgt,
                   "setup": docs[0], "bulk": docs[1], "latency": docs[2], "memory": docs[3],
                   "micro": docs[4]}, f, indent=1)
    md = "# Benchmark results\n\n" + render(docs, tgt, args, plot_files, "", None)
    with open(os.path.join(args.indir, "results.md"), "w", encoding="utf-8") as f:
        f.write(md)
    print(md)

    if args.docs:
        plots_dir = args.plots_dir or os.path.join(os.path.dirname(args.docs), "bench")
        os.makedirs(plots_dir, exist_ok=True)
        for p in plot_files:
            shutil.copy(os.path.join(args.indir, p), os.path.join(plots_dir, p))
        prefix = os.path.relpath(plots_dir, os.path.dirname(os.path.abspath(args.docs)) or ".") + "/"
        intro_path = os.path.join(HERE, "benchmarks_intro.md")
        analysis_path = os.path.join(HERE, "analysis.md")
        intro = open(intro_path, encoding="utf-8").read() if os.path.exists(intro_path) else "# Benchmarks\n"
        analysis = open(analysis_path, encoding="utf-8").read() if os.path.exists(analysis_path) else None
        body = render(docs, tgt, args, plot_files, prefix, analysis)
        with open(args.docs, "w", encoding="utf-8") as f:
            f.write(intro.rstrip() + "\n\n## Latest run\n\n" + body)
        print(f"report: wrote {args.docs} and {len(plot_files)} plots in {plots_dir}", file=sys.stderr)
    scored = [t for t in tgt if not t.get("informational")]
    met = [t for t in scored if t["met"]]
    print(f"report: {len(met)} of {len(scored)} targets met", file=sys.stderr)


if __name__ == "__main__":
    main()
