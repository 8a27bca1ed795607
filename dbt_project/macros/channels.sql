{# Marketing channels: HubSpot's source category and the (utm source, utm medium) pair it stands for. The
   sandbox's world maps them one to one (sandbox/world.py CHANNELS), so either side is read off the other:
   HubSpot touches get their medium, Shopify landing sites their channel. Unknown values give null. #}
{% macro touch_channels() -%}
    {{ return({
        'ORGANIC_SEARCH': ('google', 'organic'),
        'PAID_SEARCH': ('google', 'cpc'),
        'SOCIAL_MEDIA': ('instagram', 'social'),
        'EMAIL_MARKETING': ('newsletter', 'email'),
        'DIRECT_TRAFFIC': ('(direct)', '(none)'),
        'REFERRALS': ('partner-blog.example', 'referral'),
    }) }}
{%- endmacro %}

{% macro channel_utm_medium(channel) -%}
    case {{ channel }}
        {%- for name, pair in touch_channels().items() %}
        when '{{ name }}' then '{{ pair[1] }}'
        {%- endfor %}
    end
{%- endmacro %}

{% macro utm_channel(utm_source, utm_medium) -%}
    case
        {%- for name, pair in touch_channels().items() %}
        when {{ utm_source }} = '{{ pair[0] }}' and {{ utm_medium }} = '{{ pair[1] }}' then '{{ name }}'
        {%- endfor %}
    end
{%- endmacro %}
