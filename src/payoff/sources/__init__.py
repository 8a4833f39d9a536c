"""Adapters that turn what provider SDKs and APIs return into payoff's token buckets."""
