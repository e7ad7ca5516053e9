#!/bin/sh
# Re-make the README's figures from the repository root:   sh docs/img/make_figures.sh
# (msc-meta installed, or PYTHONPATH=src). Every image of the README is one command here.
set -e
msc-meta forest --outcome fistula_closure --timepoint 208 --unit patient --multiarm split \
    --favours-left "Favours control" --favours-right "Favours MSC" \
    -o docs/img/forest_fistula_closure.png --force
msc-meta regress --outcome fistula_closure --timepoint 208 --unit fistula \
    --mods "log10(dose_cells)" -o docs/img/bubble_dose_response.png --force > /dev/null
# risk-of-bias traffic lights: examples/rob_illustrative.csv holds INVENTED numbers and
# judgements (the curated table has no risk-of-bias columns)
msc-meta forest --data examples/rob_illustrative.csv --outcome remission \
    --columns year,dose_cells --order year --label-t MSC --label-c Placebo \
    --favours-left "Favours placebo" --favours-right "Favours MSC" \
    --title "Illustrative data: remission at 24 weeks" -o docs/img/forest_rob_illustrative.png --force
# the report, as a co-author opens it: one HTML file, rendered by headless Chromium
# (Debian's chromium; the flags keep it off the network)
msc-meta report --outcome fistula_closure --timepoint 208 --unit patient --multiarm split -o /tmp/msc_meta_report.html --force
profile=$(mktemp -d)
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --hide-scrollbars --window-size=1100,1500 \
    --screenshot=docs/img/report.png file:///tmp/msc_meta_report.html
rm -rf "$profile"
