{{ config(materialized="table") }}

{#
  Share counts that are valid row by row but are vendor glitches, found from the count
  series itself (and the price around a step). int_shares_outstanding_asof_daily skips the
  rows with held_back = true, so the last good count stays in force over them ("hold the
  last good count"): a glitch is never booked as a shares channel. Every row here is also
  a finding in analytics.data_quality_findings.

  A step is a count that differs from the one before by more than `jump` (5 %); the
  screener rounds counts in steps of ~0.4 % and quarterly buybacks move them by 1-3 %, so
  those stay below it and are noise, not steps.

  - jump_reverted (held back): a step followed, within `horizon_days`, by a count back
    within `revert_tolerance` (1 %) of the level before it, e.g. -89 % for five weeks and
    back. Every count from the step up to (not including) the return is held back.
  - split_without_price_move (held back, from the step on): a step that does not revert,
    by a split-like ratio (n or 1/n, n >= 2, within 1 %), while the price around it did
    not move by the inverse ratio: the prices are already split-adjusted and the counts
    changed basis. The pre-step count is held (the cap stays on one basis; its level is
    the pre-split one, which the finding says).
  - step_unconfirmed (not held back, recorded only): any other step that does not revert
    and is not matched by the price (a merger, an issuance or a vendor basis change: the
    data cannot tell).
  A step that is the return of an episode is not an episode of its own.
  A step matched by an inverse price move (a real split: price and count move together)
  is a corporate action: no row here.
#}

{% set jump = var('shares_glitch_jump', 0.05) %}
{% set revert_tolerance = var('shares_glitch_revert_tolerance', 0.01) %}
{% set horizon_days = var('shares_glitch_horizon_days', 92) %}
{% set split_tolerance = 0.01 %}
{% set price_match = 0.25 %}

with counts as (

    select
        security_id,
        as_of_date,
        {{ collapsed_share_count() }} as shares
    from {{ ref('stg_shares_outstanding') }}
    group by security_id, as_of_date

),

ordered as (

    select
        security_id,
        as_of_date,
        shares,
        lag(shares) over (partition by security_id order by as_of_date) as prev_shares
    from counts
    where shares > 0

),

steps as (

    select security_id, as_of_date as step_date, prev_shares as level_before, shares as level_after
    from ordered
    where prev_shares is not null
      and abs(ln(shares / prev_shares)) > ln(1 + {{ jump }})

),

candidates as (

    -- the first later count back near the level before the step, within the horizon
    select s.security_id, s.step_date, s.level_before, min(c.as_of_date) as revert_date
    from steps as s
    inner join counts as c
        on c.security_id = s.security_id
       and c.as_of_date > s.step_date
       and c.as_of_date <= {{ add_days('s.step_date', horizon_days) }}
       and abs(ln(c.shares / s.level_before)) <= ln(1 + {{ revert_tolerance }})
    group by s.security_id, s.step_date, s.level_before

),

reverted as (

    -- the return of an episode is a step back, which "reverts" to the glitch level when a
    -- later count repeats it: not an episode of its own
    select c.*
    from candidates as c
    left join candidates as earlier
        on earlier.security_id = c.security_id
       and earlier.step_date < c.step_date
       and earlier.revert_date >= c.step_date
    where earlier.security_id is null

),

lasting as (

    -- steps that do not revert and are not the return (or a move inside) of a reverted one
    select s.*
    from steps as s
    left join reverted as r
        on r.security_id = s.security_id
       and r.step_date <= s.step_date
       and r.revert_date >= s.step_date
    where r.security_id is null

),

prices as (

    -- only the securities with a lasting step (the two joins below read no other), each
    -- with all its rows, so lag/lead see the same neighbours as over every price row
    select
        security_id,
        trade_date,
        lag(close, 5) over (partition by security_id order by trade_date) as close_before,
        lead(close, 2) over (partition by security_id order by trade_date) as close_after
    from {{ ref('stg_prices_daily') }}
    where security_id in (select l.security_id from lasting as l)

),

step_session as (

    -- first session on or after the step: the price is compared from 5 sessions before
    -- it to 2 after, so a count dated a day or two after the ex-date still finds its move
    select l.security_id, l.step_date, min(p.trade_date) as session
    from lasting as l
    inner join prices as p
        on p.security_id = l.security_id
       and p.trade_date >= l.step_date
    group by l.security_id, l.step_date

),

classified as (

    select
        l.security_id,
        l.step_date,
        l.level_before,
        l.level_after,
        p.close_after / p.close_before as price_ratio,
        greatest(l.level_after / l.level_before, l.level_before / l.level_after) as step_factor
    from lasting as l
    left join step_session as ss
        on ss.security_id = l.security_id and ss.step_date = l.step_date
    left join prices as p
        on p.security_id = ss.security_id and p.trade_date = ss.session

),

lasting_kinds as (

    select
        *,
        case
            -- the price offsets at least half of the step (in logs), and within 25 %:
            -- a split or a consolidation, which is real and stays
            when price_ratio is not null
                 and abs(ln(price_ratio * level_after / level_before))
                     < least(ln(1 + {{ price_match }}), 0.5 * abs(ln(level_after / level_before)))
                then 'corporate_action'
            when round(step_factor) >= 2
                 and abs(step_factor / round(step_factor) - 1) <= {{ split_tolerance }}
                then 'split_without_price_move'
            else 'step_unconfirmed'
        end as glitch_kind
    from classified

),

flagged as (

    select
        c.security_id,
        c.as_of_date,
        c.shares,
        'jump_reverted' as glitch_kind,
        true as held_back,
        r.level_before as reference_shares,
        r.step_date as episode_from,
        r.revert_date as episode_to,
        cast(null as double) as price_ratio
    from reverted as r
    inner join counts as c
        on c.security_id = r.security_id
       and c.as_of_date >= r.step_date
       and c.as_of_date < r.revert_date

    union all

    select
        c.security_id,
        c.as_of_date,
        c.shares,
        k.glitch_kind,
        true as held_back,
        k.level_before as reference_shares,
        k.step_date as episode_from,
        cast(null as date) as episode_to,
        k.price_ratio
    from lasting_kinds as k
    inner join counts as c
        on c.security_id = k.security_id
       and c.as_of_date >= k.step_date
    where k.glitch_kind = 'split_without_price_move'

    union all

    select
        security_id,
        step_date as as_of_date,
        level_after as shares,
        glitch_kind,
        false as held_back,
        level_before as reference_shares,
        step_date as episode_from,
        step_date as episode_to,
        price_ratio
    from lasting_kinds
    where glitch_kind = 'step_unconfirmed'

),

ranked as (

    -- a count inside two episodes appears once, held back if either holds it back
    select
        *,
        row_number() over (
            partition by security_id, as_of_date
            order by case when held_back then 0 else 1 end, episode_from
        ) as rn
    from flagged

)

select
    security_id, as_of_date, shares, glitch_kind, held_back, reference_shares,
    episode_from, episode_to, price_ratio
from ranked
where rn = 1
