"""The business register's own shapes, turned into the service's at the edge."""
