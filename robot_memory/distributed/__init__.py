"""Work spread over processes and hosts: episodes fanned out over Ray."""
