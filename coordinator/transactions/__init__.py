"""Transactions: the commit protocols, their recovery, and the story of each transaction."""
