/**
 * The status page's stylesheet, inlined so the page needs nothing else (a control port is often
 * reached through a tunnel or from a phone on a site with no Internet). Below 700 px wide each
 * table row becomes a card with the column name beside each value, so nothing scrolls sideways.
 */
export const STYLE = `
:root {
  --bg: #f6f7f9; --fg: #1c2330; --muted: #5f6b7a; --card: #fff; --line: #dfe3e8;
  --ok: #1a7f37; --ok-bg: #dafbe1; --warn: #9a6700; --warn-bg: #fff8c5;
  --bad: #cf222e; --bad-bg: #ffebe9; --info: #0969da; --info-bg: #ddf4ff; --off-bg: #eaeef2;
  color-scheme: light dark;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0d1117; --fg: #e6edf3; --muted: #8d96a0; --card: #161b22; --line: #30363d;
    --ok: #3fb950; --ok-bg: #12261e; --warn: #d29922; --warn-bg: #272115;
    --bad: #f85149; --bad-bg: #2d1517; --info: #58a6ff; --info-bg: #121d2f; --off-bg: #21262d;
  }
}
* { box-sizing: border-box; }
body {
  margin: 0; padding: 16px; background: var(--bg); color: var(--fg);
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
}
main { max-width: 1200px; margin: 0 auto; }
header h1 { margin: 0 0 2px; font-size: 1.6rem; overflow-wrap: anywhere; }
header .sub { margin: 0 0 12px; color: var(--muted); }
.summary { display: flex; flex-wrap: wrap; gap: 8px; margin: 0 0 16px; padding: 0; list-style: none; }
.summary li { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 6px 12px; }
.summary b { font-size: 1.1rem; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 12px 16px; margin: 0 0 16px; }
h2 { font-size: 1.1rem; margin: 0 0 8px; }
h3 { font-size: 1rem; margin: 14px 0 6px; overflow-wrap: anywhere; }
h3 .target { font-weight: normal; color: var(--muted); }
p.note { color: var(--muted); margin: 4px 0; }
p.line { display: flex; flex-wrap: wrap; align-items: center; gap: 6px; }
.small { font-size: .85em; }
.nowrap { white-space: nowrap; }
table { width: 100%; border-collapse: collapse; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: .8rem; text-transform: uppercase; letter-spacing: .03em; color: var(--muted); font-weight: 600; }
tr:last-child td { border-bottom: 0; }
td { overflow-wrap: anywhere; }
th.num, td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
code { font: .9em ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace; }
.muted { color: var(--muted); }
.pill { display: inline-block; border-radius: 999px; padding: 0 8px; font-size: .85rem; font-weight: 600; white-space: nowrap; }
.up { color: var(--ok); background: var(--ok-bg); }
.wait { color: var(--warn); background: var(--warn-bg); }
.down { color: var(--bad); background: var(--bad-bg); }
.off { color: var(--muted); background: var(--off-bg); }
.s2 { color: var(--ok); background: var(--ok-bg); }
.s3 { color: var(--info); background: var(--info-bg); }
.s4 { color: var(--warn); background: var(--warn-bg); }
.s5 { color: var(--bad); background: var(--bad-bg); }
.s0 { color: var(--muted); background: var(--off-bg); }
.counts { display: flex; flex-wrap: wrap; gap: 4px; }
footer { color: var(--muted); font-size: .85rem; text-align: center; }
footer a { color: var(--info); }
@media (max-width: 700px) {
  body { padding: 10px; font-size: 14px; }
  section { padding: 10px 12px; }
  table.rows thead { display: none; }
  table.rows tr { display: block; border-bottom: 1px solid var(--line); padding: 6px 0; }
  table.rows tr:last-child { border-bottom: 0; }
  table.rows td { display: flex; justify-content: space-between; gap: 12px; border: 0; padding: 2px 0; text-align: right; }
  table.rows td::before { content: attr(data-label); color: var(--muted); font-weight: 600; text-align: left; flex: none; }
  table.rows td > .v { min-width: 0; }
  table.rows td.num { white-space: normal; }
  .counts { justify-content: flex-end; }
}
`;
