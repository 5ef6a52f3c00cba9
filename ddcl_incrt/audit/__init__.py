"""The audit: train DDCL-INCRT on real data, check every implemented claim live, report what held."""
