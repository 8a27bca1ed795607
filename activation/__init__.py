"""Activation: server-side conversions and CRM updates from the published marts to the platforms that act
on them (GA4 Measurement Protocol, Meta Conversions API, ActiveCampaign and HubSpot contacts).

One module per destination, all of the same shape (see `activation.base.Destination`); `conversions`
reads what may go out from the published marts; `ledger` records every conversion's state per
destination in the warehouse (`ops.activation_ledger`); `run` decides, sends and records.
"""
