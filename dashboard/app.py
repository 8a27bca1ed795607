"""The customer-journey dashboard (Streamlit), Looker Studio style: a header with the date-range control,
a row of scorecards with deltas, trends, the journey and data health.

Run it with `journey dashboard`. It reads only the published marts, never the warehouse a run is writing,
through flows/published.py on either warehouse: on DuckDB the published file (`JOURNEY_PUBLISHED`), on BigQuery
the current published version. Every rerun of this script opens them read-only, asks all its queries in that
one batch (so one page shows one run) and closes it, so a publish is seen on the next interaction, or within
seconds by itself (a fragment watches the published identity), without a restart, and a run is never blocked.
Results are cached per run id.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import altair as alt
import duckdb
import pandas as pd
import streamlit as st

from dashboard import queries, ranges
from dashboard.queries import Filters, NotPublished, ReadFailed
from dashboard.ranges import COMPARISONS, PRESETS, DateRange
from dashboard.scorecards import scorecards
from flows.publish import published_path
from flows.published import location

WATCH_EVERY = timedelta(seconds=10)
NOT_YET = "not available yet: run `journey run` to publish `{}`"


@st.cache_data(max_entries=512, show_spinner=False)
def cached(_con, path: str, run_id: str, name: str, *args):
    """A query's answer for one published run: the run id is in the key, so a new publish misses."""
    return getattr(queries, name)(_con, *args)


def header_controls(as_of: date, first: date) -> tuple[DateRange, DateRange, str]:
    """The date-range control: a preset counted back from the as-of date (or a custom range) and a
    comparison period."""
    left, middle, right = st.columns([2, 3, 2])
    preset = left.selectbox("Date range", list(PRESETS), index=list(PRESETS).index(ranges.DEFAULT_PRESET),
                            format_func=PRESETS.get, key="preset")
    custom = None
    if preset == "custom":
        default = ranges.preset_range(ranges.DEFAULT_PRESET, as_of)
        picked = middle.date_input("Custom range", value=(default.start, default.end), min_value=first,
                                   max_value=as_of, key="custom_range")
        if isinstance(picked, tuple | list) and len(picked) == 2:
            custom = DateRange(picked[0], picked[1])
        else:  # the first of two clicks: keep showing a whole range until the second
            custom = DateRange(picked[0] if picked else as_of, as_of)
    comparison = right.selectbox("Compare with", list(COMPARISONS),
                                 index=list(COMPARISONS).index(ranges.DEFAULT_COMPARISON),
                                 format_func=COMPARISONS.get, key="comparison")
    current = ranges.preset_range(preset, as_of, custom)
    previous = ranges.comparison_range(current, comparison)
    if preset != "custom":
        middle.markdown(f"**{current.label()}**  \nvs {previous.label()} · as of {as_of:%d %b %Y}")
    else:
        middle.caption(f"vs {previous.label()} · as of {as_of:%d %b %Y}")
    return current, previous, comparison


def sidebar_filters(options: queries.FilterOptions) -> Filters:
    st.sidebar.header("Filters")
    st.sidebar.caption("Apply to every panel; see each panel's note for what a filter cannot reach.")
    if options.sources:
        sources = st.sidebar.multiselect("Acquisition source", options.sources, key="sources")
    else:
        sources = []
        st.sidebar.caption("Acquisition source: " + NOT_YET.format("dim_customers.acquisition_source"))
    countries = st.sidebar.multiselect("Country", options.countries, key="countries")
    currencies = st.sidebar.multiselect("Currency", options.currencies, key="currencies")
    customer_type = st.sidebar.radio("New vs returning", ["all", "new", "returning"], key="customer_type",
                                     format_func={"all": "All orders", "new": "New (first orders)",
                                                  "returning": "Returning (repeat orders)"}.get)
    return Filters(tuple(sources), tuple(countries), tuple(currencies), customer_type)


def scorecard_row(current: queries.Kpis, previous: queries.Kpis, comparison: str) -> None:
    tiles = scorecards(current, previous)
    for row in (tiles[:4], tiles[4:]):
        for column, tile in zip(st.columns(len(row)), row, strict=True):
            column.metric(tile.label, tile.value, tile.delta, delta_color=tile.delta_color, help=tile.help,
                          border=True)
    st.caption(f"Δ vs {COMPARISONS[comparison].lower()}: money and counts as % change, rates in percentage points.")


def trends_section(frame: pd.DataFrame, grain: str) -> None:
    left, right = st.columns(2)
    base = alt.Chart(frame).encode(x=alt.X("period:T", title=grain.capitalize()))
    revenue = base.mark_bar(color="#4285F4", opacity=0.8).encode(
        y=alt.Y("net_revenue:Q", title="Net revenue"), tooltip=["period:T", "net_revenue:Q", "orders:Q"])
    orders = base.mark_line(color="#EA4335", point=True).encode(y=alt.Y("orders:Q", title="Orders"))
    left.markdown("**Revenue and orders**")
    left.altair_chart(alt.layer(revenue, orders).resolve_scale(y="independent"), width="stretch")
    split = frame.melt(id_vars="period", value_vars=["new_orders", "returning_orders"], var_name="customer",
                       value_name="count")
    split["customer"] = split["customer"].map({"new_orders": "New", "returning_orders": "Returning"})
    right.markdown("**Orders: new vs returning customers**")
    right.altair_chart(alt.Chart(split).mark_bar().encode(
        x=alt.X("period:T", title=grain.capitalize()), y=alt.Y("count:Q", stack="zero", title="Orders"),
        color=alt.Color("customer:N", scale=alt.Scale(range=["#34A853", "#FBBC05"]), title=None),
        tooltip=["period:T", "customer:N", "count:Q"]), width="stretch")


def journey_section(funnel: pd.DataFrame, cohorts: pd.DataFrame, segments: pd.DataFrame) -> None:
    left, right = st.columns(2)
    left.markdown("**Funnel: contacts created in the range → first order → repeat order**")
    top = max(int(funnel["people"].iloc[0]), 1)
    funnel = funnel.assign(share=funnel["people"] / top)
    left.altair_chart(alt.Chart(funnel).mark_bar(color="#4285F4").encode(
        y=alt.Y("stage:N", sort=list(funnel["stage"]), title=None), x=alt.X("people:Q", title="People"),
        tooltip=["stage:N", "people:Q", alt.Tooltip("share:Q", format=".1%")]), width="stretch")
    left.dataframe(funnel[["stage", "people", "share"]], hide_index=True, width="stretch",
                   column_config={"share": st.column_config.NumberColumn("of contacts", format="percent")})
    right.markdown("**Cohort retention** (first-order month × months since)")
    if cohorts.empty:
        right.caption("No cohorts in this range.")
    else:
        cohorts = cohorts.assign(cohort=pd.to_datetime(cohorts["cohort_month"]).dt.strftime("%Y-%m"))
        heat = alt.Chart(cohorts).encode(x=alt.X("month_number:O", title="Months since first order"),
                                         y=alt.Y("cohort:O", title="Cohort"))
        right.altair_chart(alt.layer(
            heat.mark_rect().encode(color=alt.Color("retention_rate:Q", scale=alt.Scale(scheme="blues"),
                                                    title="Retention"),
                                    tooltip=["cohort:O", "month_number:O", "cohort_size:Q", "active_customers:Q",
                                             alt.Tooltip("retention_rate:Q", format=".1%")]),
            heat.mark_text(fontSize=9).encode(text=alt.Text("retention_rate:Q", format=".0%"))),
            width="stretch")
    st.markdown("**RFM segments** of the customers who ordered in the range (scored at the as-of date)")
    st.dataframe(segments, hide_index=True, width="stretch",
                 column_config={"lifetime_net_revenue": st.column_config.NumberColumn(format="%.2f")})


def attribution_section(frame: pd.DataFrame | None) -> None:
    st.markdown("**Attribution** by model and source (conversions in the range)")
    if frame is None:
        st.info("Attribution is " + NOT_YET.format("marts.fct_attribution"))
        return
    if frame.empty:
        st.caption("No attributed conversions in this range.")
        return
    models = sorted(frame["attribution_model"].unique())
    model = st.selectbox("Attribution model", models, key="attribution_model",
                         index=models.index("last_touch") if "last_touch" in models else 0)
    chosen = frame[frame["attribution_model"] == model]
    left, right = st.columns(2)
    by_source = chosen.groupby("source", as_index=False)[["conversions", "attributed_net_revenue"]].sum()
    left.altair_chart(alt.Chart(by_source).mark_bar(color="#34A853").encode(
        y=alt.Y("source:N", sort="-x", title="Source"), x=alt.X("attributed_net_revenue:Q", title="Net revenue"),
        tooltip=["source:N", "conversions:Q", "attributed_net_revenue:Q"]), width="stretch")
    right.dataframe(chosen.drop(columns="attribution_model"), hide_index=True, width="stretch")


def health_section(run: queries.Run, as_of: date, history: pd.DataFrame, payments: dict | None,
                   unreconciled: int) -> None:
    st.caption("About the published data as a whole: the range and filters do not apply.")
    left, middle, right = st.columns(3)
    left.metric("Last published (UTC)", f"{run.published_at:%Y-%m-%d %H:%M}", help=f"Run {run.run_id}", border=True)
    middle.metric("Data as of", f"{as_of:%Y-%m-%d}", border=True,
                  help="The latest day of data loaded: presets count back from it.")
    right.metric("Orders not reconciled with Stripe", f"{unreconciled:,}", border=True,
                 help="Counted orders no charge paid, or paid with a different amount.")
    if payments is None:
        st.info("Unmatched payments: " + NOT_YET.format("marts.fct_payments"))
    else:
        st.markdown("**Unmatched payments** (Stripe charges and Stripe-gateway transactions; other gateways "
                    "have no charge to match)")
        charges, transactions, summary = st.columns([1, 1, 2])
        charges.metric("Stripe charges with no transaction", f"{payments['unmatched_charges']:,}", border=True,
                       help="Charges no Shopify transaction matched, e.g. made outside the shop.")
        transactions.metric("Stripe-gateway transactions with no charge", f"{payments['unmatched_transactions']:,}",
                            border=True, help="Shopify transactions on the Stripe gateway no charge matched.")
        summary.dataframe(payments["summary"], hide_index=True, width="stretch")
        st.dataframe(payments["unmatched"], hide_index=True, width="stretch")
    st.caption(f"Run `{run.run_id}`")
    with st.expander("Run history"):
        st.dataframe(history, hide_index=True, width="stretch")


@st.fragment(run_every=WATCH_EVERY)
def watch_for_publish(path: Path) -> None:
    """Rerun the page when a run publishes, so an open page shows the new data without a click: a publish
    renames a new file into place (DuckDB) or points at a new version (BigQuery), so the identity changes."""
    if queries.file_identity(path) != st.session_state.get("published_identity"):
        st.rerun()


def main() -> None:
    st.set_page_config(page_title="Customer journey", page_icon="📈", layout="wide")
    path = published_path()
    # noted before the file is opened: a publish in between makes the watcher rerun once more, never miss
    st.session_state["published_identity"] = queries.file_identity(path)
    title, refresh = st.columns([6, 1])
    title.title("Customer journey")
    with refresh:
        st.button("Check for new data", help="Reopens the published marts; a new run also shows by itself "
                  f"within {WATCH_EVERY.seconds} s.")
        watch_for_publish(path)
    try:
        with queries.open_published(path) as con:
            page(con, path)
    except NotPublished as missing:
        st.info(str(missing))
    except (duckdb.Error, ReadFailed) as error:  # e.g. an older layout: say so, the next refresh retries
        st.error(f"The published marts at `{location(path)}` could not be read ({error}). Publish again with "
                 "`journey run`; this page reopens them on its next refresh.")


def page(con, path: Path) -> None:
    run = queries.latest_run(con)
    as_of = queries.as_of_date(con)
    if run is None or as_of is None:
        raise NotPublished(queries.load_hint(location(path)))

    def ask(name: str, *args):
        return cached(con, con.where, run.run_id, name, *args)

    current, previous, comparison = header_controls(as_of, ask("first_date"))
    filters = sidebar_filters(ask("filter_options"))
    if filters.order_filtered:
        st.caption("Country, currency and new vs returning filter orders: contacts and failed payments follow "
                   "the acquisition source only, and refunds are those of the matching orders, by order date.")
    scorecard_row(ask("kpis", current, filters), ask("kpis", previous, filters), comparison)

    st.subheader("Trends")
    grain = st.radio("By", list(queries.GRAINS), horizontal=True, key="grain", format_func=str.capitalize)
    trends_section(ask("trend", current, filters, grain), grain)

    st.subheader("The journey")
    journey_section(ask("funnel", current, filters), ask("cohort_retention", current, filters),
                    ask("rfm_segments", current, filters))
    attribution_section(ask("attribution", current, filters))

    st.subheader("Data health")
    health_section(run, as_of, ask("run_history"), ask("unmatched_payments"), ask("unreconciled_orders"))


main()
