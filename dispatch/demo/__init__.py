"""The demo city loaded by `serve` on an embedded database: Nanjing's districts as
precincts, a demo dispatcher and officer with passwords generated once per data
directory."""
