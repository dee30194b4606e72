"""memorydb"""
