"""Importing customers and orders from CSV and XLSX files, with a report of rejected rows."""
