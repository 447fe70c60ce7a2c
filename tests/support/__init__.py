"""What every test folder shares: free ports, waiting for /ping, `/opt/ml` trees, servers.

Test modules import from here, never from one another.
"""
