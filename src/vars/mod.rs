//! Variables: scopes in Ansible's precedence order, registered results and facts.

pub mod facts;
