"""`from osim.http.client import Client`: the seed's remote-evaluation client for l2run's grader."""
